//! `RUN --mount=…` options, parsed as BuildKit's `parseMount` (CSV fields, `key=value`).

use crate::error::{Error, ExpandError};
use crate::model::{MountType, RunMount, Sharing};

pub(crate) enum MountError {
    Invalid(String),
    /// `from=$X` at parse time.
    FromVariable,
    Expand(ExpandError),
}

impl RunMount {
    /// Re-parses the mount with `$VARS` expanded (BuildKit does this at dispatch, with the
    /// stage's ARG and ENV values), filling options that were written with variables.
    pub fn expanded(
        &self,
        vars: &impl Fn(&str) -> Option<String>,
        escape: char,
    ) -> Result<RunMount, Error> {
        let ex = |w: &str| crate::expand::expand(w, vars, escape);
        parse_mount(&self.spec, Some(&ex)).map_err(|e| match e {
            MountError::Expand(e) => Error::Expand(e),
            MountError::Invalid(message) => Error::InvalidMount {
                spec: self.spec.clone(),
                message,
            },
            MountError::FromVariable => Error::InvalidMount {
                spec: self.spec.clone(),
                message: "'from' doesn't support variable expansion".to_string(),
            },
        })
    }
}

type Expander<'a> = &'a dyn Fn(&str) -> Result<String, ExpandError>;

/// Go's `encoding/csv` for one record (no lazy quotes).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut f = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("extraneous or missing \" in quoted-field".to_string()),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        f.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        f.push(c);
                        i += 1;
                    }
                }
            }
            fields.push(f);
            match chars.get(i) {
                None => break,
                Some(',') => i += 1,
                Some(_) => return Err("extraneous or missing \" in quoted-field".to_string()),
            }
        } else {
            while let Some(&c) = chars.get(i) {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err("bare \" in non-quoted-field".to_string());
                }
                f.push(c);
                i += 1;
            }
            fields.push(f);
            if i >= chars.len() {
                break;
            }
            i += 1;
        }
    }
    Ok(fields)
}

fn parse_bool(key: &str, v: &str) -> Result<bool, MountError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        _ => Err(MountError::Invalid(format!("invalid value for {key}: {v}"))),
    }
}

fn parse_u32(key: &str, v: &str, radix: u32) -> Result<u32, MountError> {
    u32::from_str_radix(v, radix)
        .map_err(|_| MountError::Invalid(format!("invalid value {v} for {key}")))
}

/// docker/go-units `RAMInBytes`: `64m`, `1g`, `512k`, `1.5GiB`, `1024` (binary multiples).
fn ram_in_bytes(v: &str) -> Option<u64> {
    let s = v.trim();
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let num: f64 = s[..num_end].parse().ok()?;
    let unit = s[num_end..].trim_start().to_ascii_lowercase();
    let unit = unit.trim_end_matches('b').trim_end_matches('i');
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0_f64.powi(4),
        "p" => 1024.0_f64.powi(5),
        _ => return None,
    };
    let bytes = num * mult;
    (bytes.is_finite() && bytes >= 0.0).then_some(bytes as u64)
}

pub(crate) fn parse_mount(
    spec: &str,
    expand: Option<Expander<'_>>,
) -> Result<RunMount, MountError> {
    if spec.is_empty() {
        return Err(MountError::Invalid("empty mount".to_string()));
    }
    let fields = csv_fields(spec)
        .map_err(|e| MountError::Invalid(format!("failed to parse csv mounts: {e}")))?;
    let mut m = RunMount {
        spec: spec.to_string(),
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        id: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        readonly: false,
        required: false,
        env: None,
        size: None,
    };
    let mut ro_auto = true;
    for field in fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(mut value) = value else {
            match key.as_str() {
                "readonly" | "ro" => {
                    m.readonly = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.readonly = false;
                    ro_auto = false;
                }
                "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                    m.required = true;
                }
                "required" => {
                    return Err(MountError::Invalid(format!(
                        "unexpected key 'required' for mount type '{}'",
                        type_name(m.kind)
                    )));
                }
                _ => {
                    return Err(MountError::Invalid(format!(
                        "invalid field '{field}' must be a key=value pair"
                    )));
                }
            }
            continue;
        };
        let has_var = value.contains('$');
        match expand {
            Some(ex) => value = ex(&value).map_err(MountError::Expand)?,
            None if has_var && key == "from" => return Err(MountError::FromVariable),
            None => {}
        }
        // Without an expander, options written with a variable are only checked later.
        let deferred = expand.is_none() && has_var;
        match key.as_str() {
            "type" => {
                if deferred {
                    continue;
                }
                m.kind = match value.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(MountError::Invalid(format!(
                            "unsupported mount type {value:?} (bind, cache, tmpfs, secret or ssh)"
                        )));
                    }
                };
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "id" => m.id = Some(value),
            "env" => m.env = Some(value),
            "readonly" | "ro" => {
                if !deferred {
                    m.readonly = parse_bool(&key, &value)?;
                }
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                if !deferred {
                    m.readonly = !parse_bool(&key, &value)?;
                }
                ro_auto = false;
            }
            "required" => {
                if !matches!(m.kind, MountType::Secret | MountType::Ssh) {
                    return Err(MountError::Invalid(format!(
                        "unexpected key 'required' for mount type '{}'",
                        type_name(m.kind)
                    )));
                }
                if !deferred {
                    m.required = parse_bool(&key, &value)?;
                }
            }
            "size" => {
                if m.kind != MountType::Tmpfs {
                    return Err(MountError::Invalid(format!(
                        "unexpected key 'size' for mount type '{}'",
                        type_name(m.kind)
                    )));
                }
                if !deferred {
                    m.size = Some(ram_in_bytes(&value).ok_or_else(|| {
                        MountError::Invalid(format!("invalid value for size: {value}"))
                    })?);
                }
            }
            "sharing" => {
                if deferred {
                    continue;
                }
                m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => {
                        return Err(MountError::Invalid(format!(
                            "unsupported sharing value {value:?} (shared, private or locked)"
                        )));
                    }
                });
            }
            "mode" => {
                if !deferred {
                    m.mode = Some(parse_u32("mode", &value, 8)?);
                }
            }
            "uid" => {
                if !deferred {
                    m.uid = Some(parse_u32("uid", &value, 10)?);
                }
            }
            "gid" => {
                if !deferred {
                    m.gid = Some(parse_u32("gid", &value, 10)?);
                }
            }
            _ => {
                return Err(MountError::Invalid(format!(
                    "unexpected key '{key}' in '{field}'"
                )));
            }
        }
    }
    validate(&mut m, ro_auto)?;
    Ok(m)
}

fn type_name(t: MountType) -> &'static str {
    match t {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    }
}

fn validate(m: &mut RunMount, ro_auto: bool) -> Result<(), MountError> {
    let t = type_name(m.kind);
    let file_info_allowed = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info_allowed {
        for (set, what) in [
            (m.mode.is_some(), "mode"),
            (m.uid.is_some(), "uid"),
            (m.gid.is_some(), "gid"),
        ] {
            if set {
                return Err(MountError::Invalid(format!(
                    "{what} not allowed for {t:?} type mounts"
                )));
            }
        }
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err(MountError::Invalid(
                "secret mount should not have a from".to_string(),
            ));
        }
        if m.sharing.is_some() {
            return Err(MountError::Invalid(
                "secret mount should not define sharing".to_string(),
            ));
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() && m.env.is_none() {
            return Err(MountError::Invalid(
                "invalid secret mount. one of source, target, id or env required".to_string(),
            ));
        }
        if m.source.is_some() && m.id.is_some() {
            return Err(MountError::Invalid(
                "both source and id can't be set".to_string(),
            ));
        }
    } else if m.env.is_some() {
        return Err(MountError::Invalid(format!(
            "env is only allowed for secret mounts, not {t:?}"
        )));
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(MountError::Invalid(format!(
            "invalid cache sharing set for {t} mount"
        )));
    }
    Ok(())
}
