//! Command-line argument helpers shared by the `frl` binary and the bench commands.

use clap::builder::RangedU64ValueParser;

/// A parser of whole numbers ≥ 1 (`--steps`, `--actors`, ...), which clap rejects naming the flag.
pub fn positive<T>() -> RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    RangedU64ValueParser::<T>::new().range(1..)
}

/// Flags given on the command line, as the job-file fields they override: applied to a job in one place, through
/// its serde form, so an override is checked as the job file's own field would be.
#[derive(Debug, Default)]
pub struct Overrides(toml::Table);

impl Overrides {
    /// `field` = `value` when the flag was given (`Some`).
    pub fn set<V: serde::Serialize>(mut self, field: &str, value: Option<V>) -> anyhow::Result<Self> {
        if let Some(v) = value {
            let v = toml::Value::try_from(v).map_err(|e| anyhow::anyhow!("--{}: {e}", field.replace('_', "-")))?;
            self.0.insert(field.into(), v);
        }
        Ok(self)
    }

    /// `field` = `values` when the repeatable flag was given at least once.
    pub fn list<V: serde::Serialize>(self, field: &str, values: Vec<V>) -> anyhow::Result<Self> {
        let given = (!values.is_empty()).then_some(values);
        self.set(field, given)
    }

    /// `job` with the overridden fields replaced.
    pub fn apply<T: serde::Serialize + serde::de::DeserializeOwned>(self, job: T) -> anyhow::Result<T> {
        let mut table = toml::Table::try_from(&job)?;
        table.extend(self.0);
        table.try_into().map_err(|e| anyhow::anyhow!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Job {
        steps: u64,
        seeds: Vec<u64>,
        name: Option<String>,
    }

    #[test]
    fn only_given_flags_override_the_job() {
        let job = Job { steps: 5, seeds: vec![1, 2], name: Some("a".into()) };
        let o = Overrides::default().set("steps", Some(9u64)).unwrap().list::<u64>("seeds", vec![]).unwrap();
        let o = o.set::<String>("name", None).unwrap();
        assert_eq!(o.apply(job).unwrap(), Job { steps: 9, seeds: vec![1, 2], name: Some("a".into()) });
        let bad = Overrides::default().set("steps", Some("many")).unwrap();
        let e = bad.apply(Job { steps: 1, seeds: vec![], name: None }).unwrap_err().to_string();
        assert!(e.contains("steps"), "{e}");
    }
}
