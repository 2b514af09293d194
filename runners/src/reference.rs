//! The job-file reference, generated from the config structs: every section's fields with type, default and doc
//! comment, read from their JSON Schemas (`schemars`, which keeps doc comments as descriptions) and from their
//! `Default`s serialised to TOML (which keeps declaration order). [`markdown`] is the guide's reference page;
//! [`template`] is `frl template`'s complete, commented job file.

use anyhow::{Context, bail};
use serde_json::Value;

/// One field of a section.
#[derive(Debug, Clone)]
pub struct Field {
    /// Its key.
    pub name: String,
    /// Its type, in words (`integer`, `"sample" or "mode"`, `array of integer`, ...).
    pub ty: String,
    /// Its default as inline TOML; `None` when it has none (optional, or required without a default).
    pub default: Option<String>,
    /// Its doc comment, on one line.
    pub doc: String,
    /// Whether it is a table documented as its own section.
    pub table: bool,
}

/// One section of a job file.
#[derive(Debug, Clone)]
pub struct Section {
    /// Its TOML path (`train`, `train.optimizer`, `dqn`); empty for the top-level keys.
    pub path: String,
    /// What it holds.
    pub about: String,
    /// Its fields, in declaration order.
    pub fields: Vec<Field>,
}

/// The sections of a config type `C`: its own at `path` and one per nested table.
fn sections_of<C: schemars::JsonSchema + serde::Serialize>(
    path: &str,
    about: &str,
    defaults: &C,
) -> anyhow::Result<Vec<Section>> {
    let schema = schemars::schema_for!(C);
    let text = toml::to_string(defaults).with_context(|| format!("[{path}]: defaults do not serialise to TOML"))?;
    sections_from(path, about, schema.as_value(), &text)
}

/// The sections of a schema `root` whose defaults serialise to `text`.
fn sections_from(path: &str, about: &str, root: &Value, text: &str) -> anyhow::Result<Vec<Section>> {
    let table: toml::Table = text.parse().with_context(|| format!("[{path}]: defaults do not parse back"))?;
    let mut out = Vec::new();
    walk(path, about, root, root, &table, &order_in(text), &mut out)?;
    Ok(out)
}

/// Keys in the order a TOML serialiser wrote them, per table path (relative to the text's root, `""` for it).
fn order_in(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = vec![(String::new(), Vec::new())];
    for line in text.lines() {
        let line = line.trim();
        if let Some(h) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push((h.trim().to_string(), Vec::new()));
        } else if let Some((key, _)) = line.split_once(" = ") {
            out.last_mut().expect("starts with the root").1.push(key.trim().trim_matches('"').to_string());
        }
    }
    out
}

fn walk(
    path: &str,
    about: &str,
    root: &Value,
    schema: &Value,
    defaults: &toml::Table,
    order: &[(String, Vec<String>)],
    out: &mut Vec<Section>,
) -> anyhow::Result<()> {
    let schema = resolve(root, schema);
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        bail!("[{path}]: its schema has no fields");
    };
    // Declaration order: keys with values, then sub-tables as the serialiser wrote them, then the rest (fields
    // whose default is absent) in the schema's order.
    let mut names: Vec<String> = Vec::new();
    let here = order.iter().find(|(h, _)| *h == rel_path(path, order)).map(|(_, k)| k.clone()).unwrap_or_default();
    names.extend(here);
    for (h, _) in order {
        let parts: Vec<&str> = h.split('.').collect();
        let prefix = rel_path(path, order);
        let child = if prefix.is_empty() {
            (parts.len() == 1).then(|| parts[0].to_string())
        } else {
            h.strip_prefix(&format!("{prefix}.")).filter(|rest| !rest.contains('.')).map(|rest| rest.to_string())
        };
        if let Some(c) = child
            && !names.contains(&c)
        {
            names.push(c);
        }
    }
    for k in props.keys() {
        if !names.contains(k) {
            names.push(k.clone());
        }
    }
    let mut fields = Vec::new();
    let mut nested = Vec::new();
    for name in names {
        let Some(prop) = props.get(&name) else { continue };
        let target = resolve(root, prop);
        let doc = one_line(prop.get("description").or_else(|| target.get("description")));
        let value = defaults.get(&name);
        let is_table = matches!(value, Some(toml::Value::Table(_))) && target.get("properties").is_some();
        let sub = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
        if is_table {
            nested.push((sub.clone(), doc.clone(), target.clone(), value.cloned()));
        }
        fields.push(Field {
            ty: if is_table { format!("table: see [{sub}]") } else { type_of(root, prop) },
            default: if is_table {
                None
            } else {
                // Fields left out when at their default (`keep_best = false`) have it in the schema.
                value.map(inline).or_else(|| {
                    let from_schema = prop.get("default").filter(|d| !d.is_null());
                    match from_schema.and_then(|d| toml::Value::try_from(d).ok()) {
                        Some(v) => Some(inline(&v)),
                        // A flag serialised only when set (`skip_serializing_if = "Not::not"`) is off by default.
                        None if target.get("type").and_then(Value::as_str) == Some("boolean") => Some("false".into()),
                        None => None,
                    }
                })
            },
            doc,
            table: is_table,
            name,
        });
    }
    out.push(Section { path: path.to_string(), about: about.to_string(), fields });
    for (sub, doc, schema, value) in nested {
        let Some(toml::Value::Table(t)) = value else { continue };
        walk(&sub, &doc, root, &schema, &t, order, out)?;
    }
    Ok(())
}

/// `path` relative to the root of the serialised text: sections built from one type start at its own path, whose
/// first component is not in the text.
fn rel_path(path: &str, order: &[(String, Vec<String>)]) -> String {
    let mut p = path;
    loop {
        if p.is_empty() || order.iter().any(|(h, _)| h == p) {
            return p.to_string();
        }
        match p.split_once('.') {
            Some((_, rest)) => p = rest,
            None => return String::new(),
        }
    }
}

/// A `$ref` followed to its definition.
fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
        Some(name) => root.get("$defs").and_then(|d| d.get(name)).map_or(s, |d| resolve(root, d)),
        None => s,
    }
}

/// A schema's type in words.
fn type_of(root: &Value, s: &Value) -> String {
    let s = resolve(root, s);
    for key in ["anyOf", "oneOf"] {
        if let Some(variants) = s.get(key).and_then(Value::as_array) {
            let optional = variants.iter().any(|v| v.get("type").and_then(Value::as_str) == Some("null"));
            let names: Vec<String> = variants
                .iter()
                .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
                .map(|v| type_of(root, v))
                .collect();
            let joined = names.join(" or ");
            return if optional { format!("{joined} (optional)") } else { joined };
        }
    }
    if let Some(c) = s.get("const") {
        return c.to_string();
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        return values.iter().map(Value::to_string).collect::<Vec<_>>().join(" or ");
    }
    let ty = match s.get("type") {
        Some(Value::Array(types)) => {
            let inner: Vec<&str> = types.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
            let optional = types.iter().any(|t| t == "null");
            let mut one = s.clone();
            if let (Some(t), Some(obj)) = (inner.first(), one.as_object_mut()) {
                obj.insert("type".into(), Value::String(t.to_string()));
            }
            let base = type_of(root, &one);
            return if optional { format!("{base} (optional)") } else { base };
        }
        Some(Value::String(t)) => t.as_str(),
        _ => return "any".into(),
    };
    match ty {
        "array" => match s.get("items") {
            Some(items) => format!("array of {}", type_of(root, items)),
            None => "array".into(),
        },
        "object" => match s.get("properties").and_then(Value::as_object) {
            // An enum variant with options, written `{ variant = { ... } }`.
            Some(p) if p.len() == 1 && s.get("required").is_some() => {
                let (k, v) = p.iter().next().expect("one key");
                let inner = resolve(root, v);
                if inner.get("properties").is_some() {
                    format!("{{ {k} = {{ … }} }}")
                } else {
                    format!("{{ {k} = {} }}", type_of(root, v))
                }
            }
            _ => "table".into(),
        },
        "integer" => "integer".into(),
        other => other.into(),
    }
}

/// A TOML value inline.
fn inline(v: &toml::Value) -> String {
    match v {
        toml::Value::Table(t) => {
            let parts: Vec<String> = t.iter().map(|(k, v)| format!("{k} = {}", inline(v))).collect();
            format!("{{ {} }}", parts.join(", "))
        }
        toml::Value::Array(a) => format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

/// `text` in lines of at most `width` characters (words longer than that stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

fn one_line(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every section of every job file: the top-level keys, `[train]`, `[eval]`, `[online]`, each agent's section (the
/// registry's), the forecaster's, and the heads' options.
pub fn sections() -> anyhow::Result<Vec<Section>> {
    use frl_learner::job::{EvalConfig, OnlineConfig, TrainConfig};
    let mut out = Vec::new();
    let job = frl_learner::TrainJob::parse("name = \"run\"")?;
    let top = sections_of("", "Top-level keys of every job file.", &job)?;
    out.push(top.into_iter().next().context("the top-level section")?);
    out.extend(sections_of("train", "The learner's settings, the same for every agent.", &TrainConfig::default())?);
    out.extend(sections_of("eval", "Evaluation by actors, during and after training.", &EvalConfig::default())?);
    out.extend(sections_of(
        "online",
        "Online training: the agent's own actors feed the learner.",
        &OnlineConfig::default(),
    )?);
    for entry in frl_agents::AGENTS {
        let (schema, text) = (entry.section)()?;
        let about = format!("The `{}` agent's section (`agent = \"{}\"`).", entry.kind, entry.kind);
        out.extend(sections_from(entry.kind, &about, schema.as_value(), &text)?);
    }
    let (schema, text) = frl_agents::registry::section_of::<frl_forecast::ForecastConfig>()?;
    out.extend(sections_from(
        "forecast",
        "The forecaster's section (`agent = \"forecast\"`, `frl forecast train`).",
        schema.as_value(),
        &text,
    )?);
    out.extend(sections_of(
        "head.fourier",
        "Options of `head = { fourier = { ... } }` (any `head` field).",
        &frl_heads::FourierHeadConfig::default(),
    )?);
    out.extend(sections_of(
        "head.mixture",
        "Options of `head = { mixture = { ... } }` (any `head` field).",
        &frl_heads::MixtureHeadConfig::default(),
    )?);
    // Required fields have no default.
    for sec in &mut out {
        for f in &mut sec.fields {
            if matches!((sec.path.as_str(), f.name.as_str()), ("", "name") | ("online", "env")) {
                f.default = None;
                f.ty.push_str(" (required)");
            }
        }
    }
    Ok(out)
}

/// The reference page (Markdown).
pub fn markdown() -> anyhow::Result<String> {
    let mut s = String::from(
        "# Job-file reference\n\nGenerated from the config structs by `frl reference` (do not edit: a test fails when \
         this page and the code differ). Every field with its type, default and doc comment; `frl template <agent> \
         [--online]` prints a complete job file with these defaults.\n",
    );
    for sec in sections()? {
        let title = if sec.path.is_empty() { "Top level".to_string() } else { format!("`[{}]`", sec.path) };
        s.push_str(&format!(
            "\n## {title}\n\n{}\n\n| field | type | default | description |\n|---|---|---|---|\n",
            sec.about
        ));
        for f in &sec.fields {
            let default = f.default.as_ref().map_or("—".to_string(), |d| format!("`{d}`"));
            s.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                f.name,
                f.ty.replace('|', "\\|"),
                default.replace('|', "\\|"),
                f.doc.replace('|', "\\|")
            ));
        }
    }
    Ok(s)
}

/// The dataset an offline template names.
pub const TEMPLATE_DATASET: &str = "data/cartpole";
/// The env an online template names.
pub const TEMPLATE_ENV: &str = "CartPole-v1";

/// A complete job file for `agent` (offline, or online with `online`) with every field at its default and its doc
/// comment above it; fields without a default are shown commented out.
pub fn template(agent: &str, online: bool) -> anyhow::Result<String> {
    let entry = frl_agents::lookup(agent)?;
    if online && entry.fit_online.is_none() {
        bail!("`{agent}` does not train online; agents that do: {}", frl_agents::online_kinds().join(", "));
    }
    if !online && entry.online_only {
        bail!("`{agent}` learns only from its own actors: add --online");
    }
    let all = sections()?;
    let mut s = format!(
        "# A job file for `frl train`: agent `{agent}`, trained {}.\n# Every field is at its default, with its doc \
         comment above it; delete the ones you keep as they are.\n# Reference: docs/src/reference-job-file.md.\n\n",
        if online { "online from its own actors" } else { "from a dataset" }
    );
    let want = |p: &str| {
        p.is_empty()
            || p == "train"
            || p.starts_with("train.")
            || p == "eval"
            || (online && p == "online")
            || p == agent
            || p.starts_with(&format!("{agent}."))
    };
    for sec in all.iter().filter(|sec| want(&sec.path)) {
        if !sec.path.is_empty() {
            s.push('\n');
            for line in wrap(&sec.about, 116) {
                s.push_str(&format!("# {line}\n"));
            }
            s.push_str(&format!("[{}]\n", sec.path));
        }
        for f in sec.fields.iter().filter(|f| !f.table) {
            let value = match (sec.path.as_str(), f.name.as_str()) {
                ("", "name") => Some(format!("\"{agent}-run\"")),
                ("", "agent") => Some(format!("\"{agent}\"")),
                ("", "dataset") if !online => Some(format!("\"{TEMPLATE_DATASET}\"")),
                ("", "online") => continue,
                ("online", "env") => Some(format!("\"{TEMPLATE_ENV}\"")),
                _ => f.default.clone(),
            };
            for line in wrap(&format!("{} ({})", f.doc, f.ty), 116) {
                s.push_str(&format!("# {line}\n"));
            }
            match value {
                Some(v) => s.push_str(&format!("{} = {v}\n", f.name)),
                None => s.push_str(&format!("# {} = <{}>\n", f.name, f.ty.trim_end_matches(" (optional)"))),
            }
        }
    }
    Ok(s)
}
