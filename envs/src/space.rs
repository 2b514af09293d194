//! Observation and action spaces.

use serde::{Deserialize, Serialize};

/// A Gymnasium-style space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Space {
    /// Integers `0..n`.
    Discrete(usize),
    /// A box of values with per-element bounds, held as f32 in memory.
    Box {
        /// Lower bounds, one per element.
        #[serde(with = "bounds")]
        low: Vec<f32>,
        /// Upper bounds, one per element.
        #[serde(with = "bounds")]
        high: Vec<f32>,
        /// Shape of one value.
        shape: Vec<usize>,
        /// Element type of the values (how datasets store them); `f32` when absent.
        #[serde(default, skip_serializing_if = "BoxDtype::is_f32")]
        dtype: BoxDtype,
    },
}

/// The element type of a [`Space::Box`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxDtype {
    /// 32-bit floats.
    #[default]
    F32,
    /// Bytes 0..=255, e.g. image pixels.
    U8,
}

/// Short form for people: `Discrete(3)`, `Box([-1.0, -2.0], [1.0, 2.0], [2], F32)`, or for large boxes only the
/// overall range: `Box(0..255, [4, 84, 84], U8)`.
impl std::fmt::Display for Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Space::Discrete(n) => write!(f, "Discrete({n})"),
            Space::Box { low, high, shape, dtype } if low.len() <= 6 => {
                write!(f, "Box({low:?}, {high:?}, {shape:?}, {dtype:?})")
            }
            Space::Box { low, high, shape, dtype } => {
                let lo = low.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = high.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                write!(f, "Box({lo}..{hi}, {shape:?}, {dtype:?})")
            }
        }
    }
}

impl BoxDtype {
    /// True for `F32`.
    pub fn is_f32(&self) -> bool {
        *self == BoxDtype::F32
    }
}

impl Space {
    /// A one-dimensional f32 box.
    pub fn vector(low: &[f32], high: &[f32]) -> Self {
        Space::Box { low: low.to_vec(), high: high.to_vec(), shape: vec![low.len()], dtype: BoxDtype::F32 }
    }

    /// A u8 box of the given shape with bounds 0..=255 (images, frame stacks).
    pub fn image(shape: &[usize]) -> Self {
        let n: usize = shape.iter().product();
        Space::Box { low: vec![0.0; n], high: vec![255.0; n], shape: shape.to_vec(), dtype: BoxDtype::U8 }
    }

    /// The element type: `U8` for u8 boxes, `F32` otherwise.
    pub fn dtype(&self) -> BoxDtype {
        match self {
            Space::Box { dtype, .. } => *dtype,
            Space::Discrete(_) => BoxDtype::F32,
        }
    }

    /// Number of scalar elements of one value (1 for discrete).
    pub fn flat_dim(&self) -> usize {
        match self {
            Space::Discrete(_) => 1,
            Space::Box { shape, .. } => shape.iter().product(),
        }
    }
}

/// Bounds in JSON: finite values as numbers, infinities as the strings `"inf"` / `"-inf"` (JSON has no infinity;
/// serde_json would write `null`). Python's `float("inf")` reads them back.
mod bounds {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Bound {
        Number(f32),
        Text(String),
    }

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let items: Vec<Bound> = v
            .iter()
            .map(|&x| match x {
                x if x.is_finite() => Bound::Number(x),
                x if x == f32::INFINITY => Bound::Text("inf".into()),
                x if x == f32::NEG_INFINITY => Bound::Text("-inf".into()),
                _ => Bound::Text("nan".into()),
            })
            .collect();
        items.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        Vec::<Bound>::deserialize(d)?
            .into_iter()
            .map(|b| match b {
                Bound::Number(x) => Ok(x),
                Bound::Text(t) => match t.as_str() {
                    "inf" => Ok(f32::INFINITY),
                    "-inf" => Ok(f32::NEG_INFINITY),
                    "nan" => Ok(f32::NAN),
                    other => Err(D::Error::custom(format!("bound `{other}`: expected a number, \"inf\" or \"-inf\""))),
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinite_bounds_round_trip_through_json() {
        let space = Space::vector(&[-4.8, f32::NEG_INFINITY], &[4.8, f32::INFINITY]);
        let json = serde_json::to_string(&space).unwrap();
        assert!(json.contains("\"-inf\"") && json.contains("\"inf\"") && !json.contains("null"), "{json}");
        assert_eq!(serde_json::from_str::<Space>(&json).unwrap(), space);
        let bad = json.replace("\"-inf\"", "\"minus\"");
        let err = serde_json::from_str::<Space>(&bad).unwrap_err().to_string();
        assert!(err.contains("minus"), "{err}");
    }
}
