//! A module's float parameters as named host arrays, and loading them back by name.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};

/// One named parameter on the host.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NamedTensor {
    /// Dotted module path, e.g. `blocks.0.qkv.weight`.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// Every float parameter of `module`, in visiting order, with its dotted path.
pub fn named_params<M: Module>(module: &M) -> Vec<NamedTensor> {
    struct Collect {
        path: Vec<String>,
        out: Vec<NamedTensor>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let shape = t.dims().to_vec();
            let data = frl_heads::head::to_host(t);
            self.out.push(NamedTensor { name: self.path.join("."), shape, data });
        }
    }
    let mut c = Collect { path: Vec::new(), out: Vec::new() };
    module.visit(&mut c);
    c.out
}

/// Replaces every float parameter of `module` by the same-named entry of `values`; a missing name or a shape that
/// differs is an error naming the parameter.
pub fn load_params<M: Module>(module: M, values: &HashMap<String, NamedTensor>) -> Result<M, String> {
    struct Load<'a> {
        path: Vec<String>,
        values: &'a HashMap<String, NamedTensor>,
        errors: Vec<String>,
    }
    impl ModuleMapper for Load<'_> {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let name = self.path.join(".");
            let (id, tensor, mapper) = param.consume();
            let Some(v) = self.values.get(&name) else {
                self.errors.push(format!("parameter `{name}` is missing"));
                return Param::from_mapped_value(id, tensor, mapper);
            };
            let dims = tensor.dims();
            if v.shape != dims {
                self.errors.push(format!("parameter `{name}` has shape {:?}, the model needs {dims:?}", v.shape));
                return Param::from_mapped_value(id, tensor, mapper);
            }
            let require_grad = tensor.is_require_grad();
            let mut t = Tensor::<D>::from_data(TensorData::new(v.data.clone(), dims), &tensor.device());
            if require_grad {
                t = t.require_grad();
            }
            Param::from_mapped_value(id, t, mapper)
        }
    }
    let mut l = Load { path: Vec::new(), values, errors: Vec::new() };
    let module = module.map(&mut l);
    if l.errors.is_empty() { Ok(module) } else { Err(l.errors.join("; ")) }
}

/// `params` with every name under `<prefix>.` (one network of an agent that has several).
pub fn prefixed(prefix: &str, params: Vec<NamedTensor>) -> Vec<NamedTensor> {
    params
        .into_iter()
        .map(|mut p| {
            p.name = format!("{prefix}.{}", p.name);
            p
        })
        .collect()
}

/// The entries of `values` under `<prefix>.`, with the prefix removed (the inverse of [`prefixed`]).
pub fn section(values: &HashMap<String, NamedTensor>, prefix: &str) -> HashMap<String, NamedTensor> {
    let head = format!("{prefix}.");
    values.iter().filter_map(|(k, v)| k.strip_prefix(&head).map(|k| (k.to_string(), v.clone()))).collect()
}

/// Replaces the module in `slot` by `f` of it, returning `f`'s second value: how a step updates a network held in
/// `&mut self` (burn's updates consume a module and return the new one). A panic inside `f` aborts the process,
/// since `slot` would be left without a value.
pub fn update_with<M, R>(slot: &mut M, f: impl FnOnce(M) -> (M, R)) -> R {
    struct AbortOnUnwind;
    impl Drop for AbortOnUnwind {
        fn drop(&mut self) {
            eprintln!("frl: a panic while a network was being updated in place; aborting");
            std::process::abort();
        }
    }
    let guard = AbortOnUnwind;
    // SAFETY: the value read out of `slot` is written back before `slot` is used again; if `f` unwinds, the guard
    // aborts before anything can observe the moved-out slot (no double drop).
    let (new, out) = f(unsafe { std::ptr::read(slot) });
    unsafe { std::ptr::write(slot, new) };
    std::mem::forget(guard);
    out
}

/// [`update_with`] for an `f` that only returns the new module (Polyak averaging, target copies).
pub fn update<M>(slot: &mut M, f: impl FnOnce(M) -> M) {
    update_with(slot, |m| (f(m), ()))
}
