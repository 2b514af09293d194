//! Any Gymnasium env through CPython (cargo feature `python`): an interpreter embedded in the program, or, inside
//! the `frl` Python package's native module, the interpreter that imported it.
//!
//! Observations are read through the buffer protocol (in the limited C API since Python 3.11), so the same code
//! runs in the abi3 extension module. An embedded interpreter starts on first use with its signal handlers off (Ctrl-C stays with the program). Every call into
//! Python attaches the calling thread; a thread that steps many times should run inside [`crate::attached`] so that it
//! attaches once (attaching per call costs ≈ 13 µs, about as much as a CartPole step).

use std::ffi::CString;
use std::sync::{Mutex, Once};

use pyo3::buffer::{Element, ElementType, PyUntypedBuffer};
use pyo3::exceptions::PyModuleNotFoundError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple};
use serde_json::Value;

use crate::Kwargs;
use crate::env::{Action, Env, EnvError, Info, Step, Transition};
use crate::space::{BoxDtype, Space};

/// The pip command that installs what the adapter needs.
pub const INSTALL_HINT: &str = "pip install \"gymnasium[classic-control,mujoco]\" ale-py opencv-python-headless";

const HELPERS: &str = include_str!("helpers.py");

static START: Once = Once::new();
static HELPER_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static IDS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// Points the interpreter at the active virtual environment (`$VIRTUAL_ENV`) unless `PYTHONEXECUTABLE` is set.
///
/// # Safety
/// Changes the process environment: call at program start, before other threads exist.
pub unsafe fn use_active_venv() {
    if std::env::var_os("PYTHONEXECUTABLE").is_none()
        && let Some(venv) = std::env::var_os("VIRTUAL_ENV")
    {
        let python = std::path::Path::new(&venv).join("bin").join("python");
        // SAFETY: the caller guarantees no other thread reads or writes the environment now.
        unsafe { std::env::set_var("PYTHONEXECUTABLE", python) };
    }
}

/// Whether the interpreter has been started in this process.
pub(crate) fn is_running() -> bool {
    // SAFETY: Py_IsInitialized may be called at any time, with or without the interpreter.
    unsafe { pyo3::ffi::Py_IsInitialized() != 0 }
}

fn start() {
    START.call_once(Python::initialize);
}

/// Keeps one `&'static str` per distinct env id (a handful per process).
fn intern(id: String) -> &'static str {
    let mut ids = IDS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(known) = ids.iter().find(|known| **known == id) {
        return known;
    }
    let leaked: &'static str = Box::leak(id.into_boxed_str());
    ids.push(leaked);
    leaked
}

/// Turns a Python exception into an error naming the env and the call, with the Python traceback.
fn python_error(py: Python<'_>, env: &str, call: &str, err: PyErr) -> EnvError {
    let mut message = err.to_string();
    if let Some(tb) = err.traceback(py).and_then(|tb| tb.format().ok()) {
        message = format!("{message}\n{}", tb.trim_end());
    }
    EnvError::Python { env: env.to_string(), call: call.to_string(), message }
}

/// Imports a module, explaining how to install it when it is missing.
fn import<'py>(py: Python<'py>, env: &str, module: &str) -> Result<Bound<'py, PyModule>, EnvError> {
    PyModule::import(py, module).map_err(|err| {
        if err.is_instance_of::<PyModuleNotFoundError>(py) {
            let python = PyModule::import(py, "sys")
                .and_then(|sys| sys.getattr("executable"))
                .and_then(|e| e.extract::<String>())
                .unwrap_or_else(|_| "?".to_string());
            EnvError::PythonPackageMissing {
                env: env.to_string(),
                package: module.to_string(),
                python,
                hint: format!("{INSTALL_HINT} (into that interpreter's environment, or set PYTHONEXECUTABLE)"),
            }
        } else {
            python_error(py, env, &format!("import {module}"), err)
        }
    })
}

/// The helper module (helpers.py), loaded once.
fn helpers<'py>(py: Python<'py>, env: &str) -> Result<Bound<'py, PyModule>, EnvError> {
    // A GIL-aware cell: a plain mutex held across Python calls can deadlock with the GIL.
    let module = HELPER_MODULE.get_or_try_init(py, || -> Result<Py<PyModule>, EnvError> {
        import(py, env, "numpy")?;
        import(py, env, "gymnasium")?;
        let code = CString::new(HELPERS).expect("helpers.py has no NUL byte");
        let module = PyModule::from_code(py, &code, c"frl_gym_helpers.py", c"frl_gym_helpers")
            .map_err(|e| python_error(py, env, "loading the adapter's helpers", e))?;
        Ok(module.unbind())
    })?;
    Ok(module.bind(py).clone())
}

/// Converts JSON keyword arguments to a Python dict.
fn kwargs_dict<'py>(py: Python<'py>, kwargs: &Kwargs) -> PyResult<Bound<'py, PyDict>> {
    fn value<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
        Ok(match v {
            Value::Null => py.None().into_bound(py),
            Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
            Value::Number(n) => match n.as_i64() {
                Some(i) => i.into_pyobject(py)?.into_any(),
                None => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
            },
            Value::String(s) => s.into_pyobject(py)?.into_any(),
            Value::Array(a) => {
                let items = a.iter().map(|x| value(py, x)).collect::<PyResult<Vec<_>>>()?;
                PyList::new(py, items)?.into_any()
            }
            Value::Object(o) => {
                let d = PyDict::new(py);
                for (k, x) in o {
                    d.set_item(k, value(py, x)?)?;
                }
                d.into_any()
            }
        })
    }
    let d = PyDict::new(py);
    for (k, v) in kwargs {
        d.set_item(k, value(py, v)?)?;
    }
    Ok(d)
}

type SpaceInfo = (String, Option<usize>, i64, Option<Vec<f64>>, Option<Vec<f64>>, Option<Vec<usize>>, String);

/// A space as seen from Rust, plus the Discrete `start` offset.
fn convert_space(id: &str, what: &str, info: SpaceInfo) -> Result<(Space, i64), EnvError> {
    let (kind, n, start, low, high, shape, dtype) = info;
    match (kind.as_str(), n, low, high, shape) {
        ("discrete", Some(n), ..) => Ok((Space::Discrete(n), start)),
        ("box", _, Some(low), Some(high), Some(shape)) => {
            let dtype = if dtype == "u8" { BoxDtype::U8 } else { BoxDtype::F32 };
            let f = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
            Ok((Space::Box { low: f(low), high: f(high), shape, dtype }, 0))
        }
        _ => Err(EnvError::UnsupportedSpace { env: id.to_string(), which: what.to_string(), space: dtype }),
    }
}

/// A Gymnasium env driven from Rust.
pub struct GymEnv {
    id: &'static str,
    env: Py<PyAny>,
    step: Py<PyAny>,
    reset: Py<PyAny>,
    observation_space: Space,
    action_space: Space,
    obs_len: usize,
    /// Python ints for the discrete actions (offset by the space's `start`).
    discrete_actions: Vec<Py<PyAny>>,
    /// `helpers.box_action` and the action shape, for continuous actions.
    box_action: Option<(Py<PyAny>, Py<PyTuple>)>,
    reset_called: bool,
}

impl GymEnv {
    /// `gymnasium.make(gym_id, **kwargs)`; `ALE/...` ids register ale-py's envs first.
    pub fn make(gym_id: &str, kwargs: &Kwargs) -> Result<Self, EnvError> {
        Self::build(format!("gym:{gym_id}"), "make", gym_id, kwargs)
    }

    /// The Decision Transformer Atari preset for a game such as `Breakout`: `ALE/<game>-v5` with frameskip 1 and no
    /// sticky actions, AtariPreprocessing (30 no-ops, frame skip 4, 84×84 gray), 4 stacked frames → u8 (4, 84, 84).
    pub fn atari(game: &str, kwargs: &Kwargs) -> Result<Self, EnvError> {
        Self::build(format!("atari:{game}"), "make_atari", game, kwargs)
    }

    fn build(id: String, maker: &str, arg: &str, kwargs: &Kwargs) -> Result<Self, EnvError> {
        start();
        Python::attach(|py| {
            let helpers = helpers(py, &id)?;
            if maker == "make_atari" || arg.starts_with("ALE/") {
                import(py, &id, "ale_py")?;
            }
            if maker == "make_atari" {
                import(py, &id, "cv2")?;
            }
            let call = format!("gymnasium.make({arg:?})");
            let kw = kwargs_dict(py, kwargs).map_err(|e| python_error(py, &id, "converting kwargs", e))?;
            let env =
                helpers.getattr(maker).and_then(|f| f.call1((arg, kw))).map_err(|e| python_error(py, &id, &call, e))?;
            let space = |what: &str| -> Result<(Space, i64), EnvError> {
                let info: SpaceInfo = env
                    .getattr(what)
                    .and_then(|s| helpers.getattr("space_info")?.call1((s,)))
                    .and_then(|t| t.extract())
                    .map_err(|e| python_error(py, &id, what, e))?;
                convert_space(&id, what, info)
            };
            let (observation_space, _) = space("observation_space")?;
            let (action_space, start) = space("action_space")?;
            if matches!(observation_space, Space::Discrete(_)) {
                return Err(EnvError::UnsupportedSpace {
                    env: id,
                    which: "observation_space".into(),
                    space: "Discrete (only Box observations are supported)".into(),
                });
            }
            let (discrete_actions, box_action) = match &action_space {
                Space::Discrete(n) => {
                    let ints = (0..*n as i64).map(|a| {
                        let Ok(int) = (a + start).into_pyobject(py);
                        int.into_any().unbind()
                    });
                    (ints.collect(), None)
                }
                Space::Box { shape, .. } => {
                    let f = helpers.getattr("box_action").map_err(|e| python_error(py, &id, "box_action", e))?;
                    let shape = PyTuple::new(py, shape).map_err(|e| python_error(py, &id, "action shape", e))?;
                    (Vec::new(), Some((f.unbind(), shape.unbind())))
                }
            };
            let method = |name: &str| env.getattr(name).map(Bound::unbind).map_err(|e| python_error(py, &id, name, e));
            let (step, reset) = (method("step")?, method("reset")?);
            Ok(Self {
                id: intern(id.clone()),
                obs_len: observation_space.flat_dim(),
                env: env.unbind(),
                step,
                reset,
                observation_space,
                action_space,
                discrete_actions,
                box_action,
                reset_called: false,
            })
        })
    }

    /// Sets a classic-control env's physical state (`env.unwrapped.state`) and its time limit's step count.
    pub fn set_unwrapped_state(&mut self, state: &[f64], elapsed_steps: usize) -> Result<(), EnvError> {
        Python::attach(|py| {
            let helpers = helpers(py, self.id)?;
            helpers
                .getattr("set_state")
                .and_then(|f| f.call1((self.env.bind(py), state.to_vec(), elapsed_steps)))
                .map_err(|e| python_error(py, self.id, "set_state", e))?;
            self.reset_called = true;
            Ok(())
        })
    }

    /// The wrapped Python env object.
    pub fn py_env(&self) -> &Py<PyAny> {
        &self.env
    }

    fn action<'py>(&self, py: Python<'py>, action: &Action) -> Result<Bound<'py, PyAny>, EnvError> {
        let invalid = |reason: String| EnvError::InvalidAction { env: self.id, action: format!("{action:?}"), reason };
        match (&self.action_space, action) {
            (Space::Discrete(n), Action::Discrete(a)) => match self.discrete_actions.get(*a) {
                Some(obj) => Ok(obj.bind(py).clone()),
                None => Err(invalid(format!("expected Discrete(0..{n})"))),
            },
            (Space::Box { shape, .. }, Action::Continuous(v)) => {
                let dim: usize = shape.iter().product();
                if v.len() != dim {
                    return Err(invalid(format!("expected {dim} values (shape {shape:?}), got {}", v.len())));
                }
                if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                    return Err(invalid(format!("value {i} is not finite")));
                }
                let (f, shape) = self.box_action.as_ref().expect("a Box action space has box_action");
                f.bind(py).call1((v.as_slice(), shape.bind(py))).map_err(|e| python_error(py, self.id, "box_action", e))
            }
            (Space::Discrete(n), _) => Err(invalid(format!("expected Discrete(0..{n})"))),
            (Space::Box { shape, .. }, _) => Err(invalid(format!("expected Continuous with shape {shape:?}"))),
        }
    }

    /// Appends an observation's values (any numeric array) to `out`, read through the buffer protocol (part of the
    /// limited C API since Python 3.11, so the abi3 extension module can use it too).
    fn append_obs(&self, py: Python<'_>, obs: &Bound<'_, PyAny>, out: &mut Vec<f32>) -> Result<(), EnvError> {
        let before = out.len();
        let err = |e: PyErr| python_error(py, self.id, "reading the observation", e);
        let read = |buffer: PyUntypedBuffer, out: &mut Vec<f32>| -> PyResult<bool> {
            let done = match ElementType::from_format(buffer.format()) {
                ElementType::Float { bytes: 4 } => extend_from::<f32>(py, &buffer, out, |x| x)?,
                ElementType::Float { bytes: 8 } => extend_from::<f64>(py, &buffer, out, |x| x as f32)?,
                ElementType::UnsignedInteger { bytes: 1 } => extend_from::<u8>(py, &buffer, out, |x| x as f32)?,
                _ => false,
            };
            buffer.release(py);
            Ok(done)
        };
        let done = match PyUntypedBuffer::get(obs) {
            Ok(buffer) => read(buffer, out).map_err(err)?,
            Err(_) => false,
        };
        if !done {
            // Not a buffer of f32, f64 or u8 values (a list, a number, integers): numpy converts it.
            let array = helpers(py, self.id)?.getattr("as_f32").and_then(|f| f.call1((obs,))).map_err(err)?;
            let buffer = PyUntypedBuffer::get(&array).map_err(err)?;
            if !read(buffer, out).map_err(err)? {
                return Err(err(pyo3::exceptions::PyTypeError::new_err("numpy did not return float32 values")));
            }
        }
        let got = out.len() - before;
        if got != self.obs_len {
            out.truncate(before);
            return Err(EnvError::Python {
                env: self.id.to_string(),
                call: "step".into(),
                message: format!("observation has {got} values, its space says {}", self.obs_len),
            });
        }
        Ok(())
    }

    fn info(info: &Bound<'_, PyAny>) -> Info {
        let mut out = Info::new();
        if let Ok(d) = info.cast::<PyDict>() {
            for (k, v) in d.iter() {
                if let (Ok(k), Ok(v)) = (k.extract::<String>(), v.extract::<f64>()) {
                    out.insert(k, v);
                }
            }
        }
        out
    }

    fn step_raw<'py>(
        &mut self,
        py: Python<'py>,
        action: &Action,
    ) -> Result<(Bound<'py, PyAny>, Transition, Bound<'py, PyAny>), EnvError> {
        if !self.reset_called {
            return Err(EnvError::NotReset(self.id));
        }
        let action = self.action(py, action)?;
        let result = self.step.bind(py).call1((action,)).map_err(|e| python_error(py, self.id, "step", e))?;
        let parse = || -> PyResult<_> {
            let t = result.cast::<PyTuple>()?;
            if t.len() != 5 {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "step returned {} values, expected (obs, reward, terminated, truncated, info)",
                    t.len()
                )));
            }
            let reward: f64 = t.get_item(1)?.extract()?;
            let terminated = t.get_item(2)?.is_truthy()?;
            let truncated = t.get_item(3)?.is_truthy()?;
            Ok((t.get_item(0)?, Transition { reward, terminated, truncated }, t.get_item(4)?))
        };
        parse().map_err(|e| python_error(py, self.id, "step (reading its result)", e))
    }
}

/// Appends the values of `buffer` (holding elements of type `T`) converted by `f`; `false` when its elements are
/// not `T` after all.
fn extend_from<T: Element + Copy>(
    py: Python<'_>,
    buffer: &PyUntypedBuffer,
    out: &mut Vec<f32>,
    f: impl Fn(T) -> f32,
) -> PyResult<bool> {
    let Ok(typed) = buffer.as_typed::<T>() else { return Ok(false) };
    match typed.as_slice_ptr() {
        Some(ptr) => {
            // SAFETY: the buffer is C-contiguous, of `T` values (checked by `as_typed`), and stays valid until it is
            // released after this call; the values are copied out at once while this thread is attached, so no
            // Python code can write to them meanwhile.
            let values = unsafe { ptr.as_ref() };
            out.extend(values.iter().map(|&x| f(x)));
        }
        None => out.extend(typed.to_vec(py)?.into_iter().map(f)),
    }
    Ok(true)
}

impl Env for GymEnv {
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        Python::attach(|py| {
            let kw = PyDict::new(py);
            if let Some(seed) = seed {
                kw.set_item("seed", seed).map_err(|e| python_error(py, self.id, "reset", e))?;
            }
            let result = self.reset.bind(py).call((), Some(&kw)).map_err(|e| python_error(py, self.id, "reset", e))?;
            let (obs, info): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
                result.extract().map_err(|e| python_error(py, self.id, "reset (reading its result)", e))?;
            let mut out = Vec::with_capacity(self.obs_len);
            self.append_obs(py, &obs, &mut out)?;
            self.reset_called = true;
            Ok((out, Self::info(&info)))
        })
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        Python::attach(|py| {
            let (obs, t, info) = self.step_raw(py, action)?;
            let mut out = Vec::with_capacity(self.obs_len);
            self.append_obs(py, &obs, &mut out)?;
            Ok(Step {
                obs: out,
                reward: t.reward,
                terminated: t.terminated,
                truncated: t.truncated,
                info: Self::info(&info),
            })
        })
    }

    fn step_into(&mut self, action: &Action, obs: &mut Vec<f32>) -> Result<Transition, EnvError> {
        Python::attach(|py| {
            let (o, t, _) = self.step_raw(py, action)?;
            self.append_obs(py, &o, obs)?;
            Ok(t)
        })
    }

    fn observation_space(&self) -> Space {
        self.observation_space.clone()
    }

    fn action_space(&self) -> Space {
        self.action_space.clone()
    }

    fn id(&self) -> &'static str {
        self.id
    }
}

impl Drop for GymEnv {
    fn drop(&mut self) {
        if is_running() {
            Python::attach(|py| {
                let _ = self.env.bind(py).call_method0("close");
            });
        }
    }
}

/// Runs `f` attached to the interpreter when it is running.
pub(crate) fn attached<R>(f: impl FnOnce() -> R) -> R {
    if is_running() { Python::attach(|_| f()) } else { f() }
}

/// Steps per second of CartPole-v1 through the adapter and of a pure-Python loop over the same env, same run.
pub fn bench_cartpole(steps: usize) -> Result<(f64, f64), EnvError> {
    let kwargs = Kwargs::new();
    let mut env = GymEnv::make("CartPole-v1", &kwargs)?;
    let adapter = attached(|| -> Result<f64, EnvError> {
        env.reset(Some(0))?;
        let mut obs = Vec::with_capacity(8);
        let actions = [Action::Discrete(0), Action::Discrete(1)];
        let start = std::time::Instant::now();
        for i in 0..steps {
            obs.clear();
            let t = env.step_into(&actions[i & 1], &mut obs)?;
            if t.terminated || t.truncated {
                env.reset(None)?;
            }
        }
        Ok(steps as f64 / start.elapsed().as_secs_f64())
    })?;
    let python = Python::attach(|py| -> Result<f64, EnvError> {
        let helpers = helpers(py, env.id)?;
        let seconds: f64 = helpers
            .getattr("step_loop")
            .and_then(|f| f.call1((env.env.bind(py), steps)))
            .and_then(|s| s.extract())
            .map_err(|e| python_error(py, env.id, "step_loop", e))?;
        Ok(steps as f64 / seconds)
    })?;
    Ok((adapter, python))
}
