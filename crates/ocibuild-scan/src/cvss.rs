//! CVSS base scores from vector strings: v3.0 and v3.1 (the specification's formulas and its
//! `Roundup`), v4.0 (the macro-vector lookup table and severity-distance interpolation of the
//! FIRST CVSS v4.0 specification, as its reference calculator implements it), and v2 (the
//! CVSS v2 guide's base equation, computed exactly in fixed point and rounded half up to one
//! decimal, as NVD and the `cvss` package do).

use std::collections::HashMap;

use crate::ScanError;

fn bad(vector: &str, why: impl Into<String>) -> ScanError {
    ScanError::Cvss {
        vector: vector.to_string(),
        reason: why.into(),
    }
}

fn metrics<'a>(vector: &'a str, body: &'a str) -> Result<HashMap<&'a str, &'a str>, ScanError> {
    let mut m = HashMap::new();
    for field in body.split('/') {
        let (k, v) = field
            .split_once(':')
            .ok_or_else(|| bad(vector, format!("field `{field}` is not METRIC:VALUE")))?;
        if m.insert(k, v).is_some() {
            return Err(bad(vector, format!("metric {k} appears twice")));
        }
    }
    Ok(m)
}

/// The base score of a `CVSS:3.0/…`, `CVSS:3.1/…` or `CVSS:4.0/…` vector, or of a CVSS v2
/// vector (`AV:N/AC:L/Au:N/C:P/I:P/A:P`, as OSV's `CVSS_V2` entries write it; a `CVSS:2.0/`
/// prefix or NVD's parentheses are accepted too).
pub fn base_score(vector: &str) -> Result<f64, ScanError> {
    let v = vector.trim();
    if let Some(body) = v.strip_prefix("CVSS:2.0/") {
        v2(v, body)
    } else if v.starts_with("AV:") || v.starts_with("(AV:") {
        v2(v, v.trim_start_matches('(').trim_end_matches(')'))
    } else if let Some(body) = v.strip_prefix("CVSS:3.1/") {
        v3(v, body, true)
    } else if let Some(body) = v.strip_prefix("CVSS:3.0/") {
        v3(v, body, false)
    } else if let Some(body) = v.strip_prefix("CVSS:4.0/") {
        v4(v, body)
    } else {
        Err(bad(
            v,
            "expected a CVSS:3.0/, CVSS:3.1/ or CVSS:4.0/ prefix, or a CVSS v2 vector (AV:…/AC:…/Au:…/C:…/I:…/A:…)",
        ))
    }
}

/// CVSS v2's base score. Every weight has at most four decimals, so the equation is evaluated
/// exactly in integers (scaled by 10^15) and rounded half up to one decimal: no float error can
/// move a score across a rounding boundary. Temporal and environmental metrics (`E`, `RL`, `RC`,
/// `CDP`, `TD`, `CR`, `IR`, `AR`) are checked and do not change the base score.
fn v2(vector: &str, body: &str) -> Result<f64, ScanError> {
    let m = metrics(vector, body)?;
    let get = |k: &str| -> Result<&str, ScanError> {
        m.get(k)
            .copied()
            .ok_or_else(|| bad(vector, format!("missing base metric {k}")))
    };
    let val = |k: &str, v: &str| bad(vector, format!("{k}:{v} is not a CVSS v2 value"));
    let allowed: &[(&str, &[&str])] = &[
        ("AV", &["L", "A", "N"]),
        ("AC", &["H", "M", "L"]),
        ("Au", &["M", "S", "N"]),
        ("C", &["N", "P", "C"]),
        ("I", &["N", "P", "C"]),
        ("A", &["N", "P", "C"]),
        ("E", &["U", "POC", "F", "H", "ND"]),
        ("RL", &["OF", "TF", "W", "U", "ND"]),
        ("RC", &["UC", "UR", "C", "ND"]),
        ("CDP", &["N", "L", "LM", "MH", "H", "ND"]),
        ("TD", &["N", "L", "M", "H", "ND"]),
        ("CR", &["L", "M", "H", "ND"]),
        ("IR", &["L", "M", "H", "ND"]),
        ("AR", &["L", "M", "H", "ND"]),
    ];
    for (k, v) in &m {
        match allowed.iter().find(|(name, _)| name == k) {
            Some((_, values)) if values.contains(v) => {}
            Some(_) => return Err(val(k, v)),
            None => return Err(bad(vector, format!("{k} is not a CVSS v2 metric"))),
        }
    }
    // weights in thousandths
    let av: i128 = match get("AV")? {
        "L" => 395,
        "A" => 646,
        _ => 1000,
    };
    let ac: i128 = match get("AC")? {
        "H" => 350,
        "M" => 610,
        _ => 710,
    };
    let au: i128 = match get("Au")? {
        "M" => 450,
        "S" => 560,
        _ => 704,
    };
    let cia = |k: &str| -> Result<i128, ScanError> {
        Ok(match get(k)? {
            "N" => 0,
            "P" => 275,
            _ => 660,
        })
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    // impact = 10.41 × (1 − (1−C)(1−I)(1−A)), scaled by 10^2 · 10^9 = 10^11
    let unaffected = (1000 - c) * (1000 - i) * (1000 - a);
    let impact = 1041 * (1_000_000_000 - unaffected);
    if impact == 0 {
        return Ok(0.0);
    }
    // exploitability = 20 × AV × AC × Au, scaled by 10^9
    let exploitability = 20 * av * ac * au;
    // (0.6 × impact + 0.4 × exploitability − 1.5) × 1.176, scaled by 10^15
    let inner = 6 * impact + 4 * exploitability * 100 - 15 * 100_000_000_000;
    let scaled = inner * 1176;
    // round half up to one decimal: 10^15 → 10^1
    let unit: i128 = 100_000_000_000_000;
    let tenths = if scaled >= 0 {
        (scaled + unit / 2) / unit
    } else {
        -((-scaled + unit / 2 - 1) / unit)
    };
    Ok(tenths as f64 / 10.0)
}

/// CVSS v3.1's Roundup (the smallest one-decimal number ≥ x, robust to float error).
fn roundup31(x: f64) -> f64 {
    let i = (x * 100_000.0).round() as i64;
    if i % 10_000 == 0 {
        i as f64 / 100_000.0
    } else {
        ((i / 10_000) as f64 + 1.0) / 10.0
    }
}

fn roundup30(x: f64) -> f64 {
    (x * 10.0).ceil() / 10.0
}

fn v3(vector: &str, body: &str, v31: bool) -> Result<f64, ScanError> {
    let m = metrics(vector, body)?;
    let get = |k: &str| -> Result<&str, ScanError> {
        m.get(k)
            .copied()
            .ok_or_else(|| bad(vector, format!("missing base metric {k}")))
    };
    let val = |k: &str, v: &str| bad(vector, format!("{k}:{v} is not a CVSS v3 value"));
    let scope_changed = match get("S")? {
        "U" => false,
        "C" => true,
        s => return Err(val("S", s)),
    };
    let av = match get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        s => return Err(val("AV", s)),
    };
    let ac = match get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        s => return Err(val("AC", s)),
    };
    let pr = match (get("PR")?, scope_changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        (s, _) => return Err(val("PR", s)),
    };
    let ui = match get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        s => return Err(val("UI", s)),
    };
    let cia = |k: &str| -> Result<f64, ScanError> {
        match get(k)? {
            "H" => Ok(0.56),
            "L" => Ok(0.22),
            "N" => Ok(0.0),
            s => Err(val(k, s)),
        }
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let iss = 1.0 - ((1.0 - c) * (1.0 - i) * (1.0 - a));
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    let roundup = if v31 { roundup31 } else { roundup30 };
    if impact <= 0.0 {
        return Ok(0.0);
    }
    Ok(if scope_changed {
        roundup((1.08 * (impact + exploitability)).min(10.0))
    } else {
        roundup((impact + exploitability).min(10.0))
    })
}

/// The CVSS v4.0 macro-vector scores (FIRST CVSS v4.0 specification, section 8.2), by EQ1..EQ6.
const LOOKUP: [(&str, f64); 270] = [
    ("000000", 10.0),
    ("000001", 9.9),
    ("000010", 9.8),
    ("000011", 9.5),
    ("000020", 9.5),
    ("000021", 9.2),
    ("000100", 10.0),
    ("000101", 9.6),
    ("000110", 9.3),
    ("000111", 8.7),
    ("000120", 9.1),
    ("000121", 8.1),
    ("000200", 9.3),
    ("000201", 9.0),
    ("000210", 8.9),
    ("000211", 8.0),
    ("000220", 8.1),
    ("000221", 6.8),
    ("001000", 9.8),
    ("001001", 9.5),
    ("001010", 9.5),
    ("001011", 9.2),
    ("001020", 9.0),
    ("001021", 8.4),
    ("001100", 9.3),
    ("001101", 9.2),
    ("001110", 8.9),
    ("001111", 8.1),
    ("001120", 8.1),
    ("001121", 6.5),
    ("001200", 8.8),
    ("001201", 8.0),
    ("001210", 7.8),
    ("001211", 7.0),
    ("001220", 6.9),
    ("001221", 4.8),
    ("002001", 9.2),
    ("002011", 8.2),
    ("002021", 7.2),
    ("002101", 7.9),
    ("002111", 6.9),
    ("002121", 5.0),
    ("002201", 6.9),
    ("002211", 5.5),
    ("002221", 2.7),
    ("010000", 9.9),
    ("010001", 9.7),
    ("010010", 9.5),
    ("010011", 9.2),
    ("010020", 9.2),
    ("010021", 8.5),
    ("010100", 9.5),
    ("010101", 9.1),
    ("010110", 9.0),
    ("010111", 8.3),
    ("010120", 8.4),
    ("010121", 7.1),
    ("010200", 9.2),
    ("010201", 8.1),
    ("010210", 8.2),
    ("010211", 7.1),
    ("010220", 7.2),
    ("010221", 5.3),
    ("011000", 9.5),
    ("011001", 9.3),
    ("011010", 9.2),
    ("011011", 8.5),
    ("011020", 8.5),
    ("011021", 7.3),
    ("011100", 9.2),
    ("011101", 8.2),
    ("011110", 8.0),
    ("011111", 7.2),
    ("011120", 7.0),
    ("011121", 5.9),
    ("011200", 8.4),
    ("011201", 7.0),
    ("011210", 7.1),
    ("011211", 5.2),
    ("011220", 5.0),
    ("011221", 3.0),
    ("012001", 8.6),
    ("012011", 7.5),
    ("012021", 5.2),
    ("012101", 7.1),
    ("012111", 5.2),
    ("012121", 2.9),
    ("012201", 6.3),
    ("012211", 2.9),
    ("012221", 1.7),
    ("100000", 9.8),
    ("100001", 9.5),
    ("100010", 9.4),
    ("100011", 8.7),
    ("100020", 9.1),
    ("100021", 8.1),
    ("100100", 9.4),
    ("100101", 8.9),
    ("100110", 8.6),
    ("100111", 7.4),
    ("100120", 7.7),
    ("100121", 6.4),
    ("100200", 8.7),
    ("100201", 7.5),
    ("100210", 7.4),
    ("100211", 6.3),
    ("100220", 6.3),
    ("100221", 4.9),
    ("101000", 9.4),
    ("101001", 8.9),
    ("101010", 8.8),
    ("101011", 7.7),
    ("101020", 7.6),
    ("101021", 6.7),
    ("101100", 8.6),
    ("101101", 7.6),
    ("101110", 7.4),
    ("101111", 5.8),
    ("101120", 5.9),
    ("101121", 5.0),
    ("101200", 7.2),
    ("101201", 5.7),
    ("101210", 5.7),
    ("101211", 5.2),
    ("101220", 5.2),
    ("101221", 2.5),
    ("102001", 8.3),
    ("102011", 7.0),
    ("102021", 5.4),
    ("102101", 6.5),
    ("102111", 5.8),
    ("102121", 2.6),
    ("102201", 5.3),
    ("102211", 2.1),
    ("102221", 1.3),
    ("110000", 9.5),
    ("110001", 9.0),
    ("110010", 8.8),
    ("110011", 7.6),
    ("110020", 7.6),
    ("110021", 7.0),
    ("110100", 9.0),
    ("110101", 7.7),
    ("110110", 7.5),
    ("110111", 6.2),
    ("110120", 6.1),
    ("110121", 5.3),
    ("110200", 7.7),
    ("110201", 6.6),
    ("110210", 6.8),
    ("110211", 5.9),
    ("110220", 5.2),
    ("110221", 3.0),
    ("111000", 8.9),
    ("111001", 7.8),
    ("111010", 7.6),
    ("111011", 6.7),
    ("111020", 6.2),
    ("111021", 5.8),
    ("111100", 7.4),
    ("111101", 5.9),
    ("111110", 5.7),
    ("111111", 5.7),
    ("111120", 4.7),
    ("111121", 2.3),
    ("111200", 6.1),
    ("111201", 5.2),
    ("111210", 5.7),
    ("111211", 2.9),
    ("111220", 2.4),
    ("111221", 1.6),
    ("112001", 7.1),
    ("112011", 5.9),
    ("112021", 3.0),
    ("112101", 5.8),
    ("112111", 2.6),
    ("112121", 1.5),
    ("112201", 2.3),
    ("112211", 1.3),
    ("112221", 0.6),
    ("200000", 9.3),
    ("200001", 8.7),
    ("200010", 8.6),
    ("200011", 7.2),
    ("200020", 7.5),
    ("200021", 5.8),
    ("200100", 8.6),
    ("200101", 7.4),
    ("200110", 7.4),
    ("200111", 6.1),
    ("200120", 5.6),
    ("200121", 3.4),
    ("200200", 7.0),
    ("200201", 5.4),
    ("200210", 5.2),
    ("200211", 4.0),
    ("200220", 4.0),
    ("200221", 2.2),
    ("201000", 8.5),
    ("201001", 7.5),
    ("201010", 7.4),
    ("201011", 5.5),
    ("201020", 6.2),
    ("201021", 5.1),
    ("201100", 7.2),
    ("201101", 5.7),
    ("201110", 5.5),
    ("201111", 4.1),
    ("201120", 4.6),
    ("201121", 1.9),
    ("201200", 5.3),
    ("201201", 3.6),
    ("201210", 3.4),
    ("201211", 1.9),
    ("201220", 1.9),
    ("201221", 0.8),
    ("202001", 6.4),
    ("202011", 5.1),
    ("202021", 2.0),
    ("202101", 4.7),
    ("202111", 2.1),
    ("202121", 1.1),
    ("202201", 2.4),
    ("202211", 0.9),
    ("202221", 0.4),
    ("210000", 8.8),
    ("210001", 7.5),
    ("210010", 7.3),
    ("210011", 5.3),
    ("210020", 6.0),
    ("210021", 5.0),
    ("210100", 7.3),
    ("210101", 5.5),
    ("210110", 5.9),
    ("210111", 4.0),
    ("210120", 4.1),
    ("210121", 2.0),
    ("210200", 5.4),
    ("210201", 4.3),
    ("210210", 4.5),
    ("210211", 2.2),
    ("210220", 2.0),
    ("210221", 1.1),
    ("211000", 7.5),
    ("211001", 5.5),
    ("211010", 5.8),
    ("211011", 4.5),
    ("211020", 4.0),
    ("211021", 2.1),
    ("211100", 6.1),
    ("211101", 5.1),
    ("211110", 4.8),
    ("211111", 1.8),
    ("211120", 2.0),
    ("211121", 0.9),
    ("211200", 4.6),
    ("211201", 1.8),
    ("211210", 1.7),
    ("211211", 0.7),
    ("211220", 0.8),
    ("211221", 0.2),
    ("212001", 5.3),
    ("212011", 2.4),
    ("212021", 1.4),
    ("212101", 2.4),
    ("212111", 1.2),
    ("212121", 0.5),
    ("212201", 1.0),
    ("212211", 0.3),
    ("212221", 0.1),
];

fn lookup(mv: &[u8; 6]) -> Option<f64> {
    let key: String = mv.iter().map(|d| char::from(b'0' + d)).collect();
    LOOKUP
        .binary_search_by(|(k, _)| (*k).cmp(key.as_str()))
        .ok()
        .map(|i| LOOKUP[i].1)
}

const V4_VALUES: &[(&str, &[&str])] = &[
    ("AV", &["N", "A", "L", "P"]),
    ("AC", &["L", "H"]),
    ("AT", &["N", "P"]),
    ("PR", &["N", "L", "H"]),
    ("UI", &["N", "P", "A"]),
    ("VC", &["H", "L", "N"]),
    ("VI", &["H", "L", "N"]),
    ("VA", &["H", "L", "N"]),
    ("SC", &["H", "L", "N"]),
    ("SI", &["H", "L", "N"]),
    ("SA", &["H", "L", "N"]),
    ("E", &["X", "A", "P", "U"]),
    ("CR", &["X", "H", "M", "L"]),
    ("IR", &["X", "H", "M", "L"]),
    ("AR", &["X", "H", "M", "L"]),
    ("MAV", &["X", "N", "A", "L", "P"]),
    ("MAC", &["X", "L", "H"]),
    ("MAT", &["X", "N", "P"]),
    ("MPR", &["X", "N", "L", "H"]),
    ("MUI", &["X", "N", "P", "A"]),
    ("MVC", &["X", "H", "L", "N"]),
    ("MVI", &["X", "H", "L", "N"]),
    ("MVA", &["X", "H", "L", "N"]),
    ("MSC", &["X", "H", "L", "N"]),
    ("MSI", &["X", "S", "H", "L", "N"]),
    ("MSA", &["X", "S", "H", "L", "N"]),
    ("S", &["X", "N", "P"]),
    ("AU", &["X", "N", "Y"]),
    ("R", &["X", "A", "U", "I"]),
    ("V", &["X", "D", "C"]),
    ("RE", &["X", "L", "M", "H"]),
    ("U", &["X", "Clear", "Green", "Amber", "Red"]),
];

const EQ1_MAX: [&[&str]; 3] = [
    &["AV:N/PR:N/UI:N"],
    &["AV:A/PR:N/UI:N", "AV:N/PR:L/UI:N", "AV:N/PR:N/UI:P"],
    &["AV:P/PR:N/UI:N", "AV:A/PR:L/UI:P"],
];
const EQ2_MAX: [&[&str]; 2] = [&["AC:L/AT:N"], &["AC:H/AT:N", "AC:L/AT:P"]];
/// By EQ3 then EQ6.
const EQ3EQ6_MAX: [[&[&str]; 2]; 3] = [
    [
        &["VC:H/VI:H/VA:H/CR:H/IR:H/AR:H"],
        &[
            "VC:H/VI:H/VA:L/CR:M/IR:M/AR:H",
            "VC:H/VI:H/VA:H/CR:M/IR:M/AR:M",
        ],
    ],
    [
        &[
            "VC:L/VI:H/VA:H/CR:H/IR:H/AR:H",
            "VC:H/VI:L/VA:H/CR:H/IR:H/AR:H",
        ],
        &[
            "VC:L/VI:H/VA:L/CR:H/IR:M/AR:H",
            "VC:L/VI:H/VA:H/CR:H/IR:M/AR:M",
            "VC:H/VI:L/VA:H/CR:M/IR:H/AR:M",
            "VC:H/VI:L/VA:L/CR:M/IR:H/AR:H",
            "VC:L/VI:L/VA:H/CR:H/IR:H/AR:M",
        ],
    ],
    [&[], &["VC:L/VI:L/VA:L/CR:H/IR:H/AR:H"]],
];
const EQ4_MAX: [&[&str]; 3] = [
    &["SC:H/SI:S/SA:S"],
    &["SC:H/SI:H/SA:H"],
    &["SC:L/SI:L/SA:L"],
];
const EQ1_SEV: [f64; 3] = [1.0, 4.0, 5.0];
const EQ2_SEV: [f64; 2] = [1.0, 2.0];
const EQ3EQ6_SEV: [[f64; 2]; 3] = [[7.0, 6.0], [8.0, 8.0], [10.0, 10.0]];
const EQ4_SEV: [f64; 3] = [6.0, 5.0, 4.0];

fn level(metric: &str, value: &str) -> f64 {
    match (metric, value) {
        ("AV", "N") | ("PR", "N") | ("UI", "N") | ("AC", "L") | ("AT", "N") => 0.0,
        ("AV", "A") | ("PR", "L") | ("UI", "P") | ("AC", "H") | ("AT", "P") => 0.1,
        ("AV", "L") | ("PR", "H") | ("UI", "A") => 0.2,
        ("AV", "P") => 0.3,
        ("VC" | "VI" | "VA", "H") => 0.0,
        ("VC" | "VI" | "VA", "L") => 0.1,
        ("VC" | "VI" | "VA", "N") => 0.2,
        ("SI" | "SA", "S") => 0.0,
        ("SC" | "SI" | "SA", "H") => 0.1,
        ("SC" | "SI" | "SA", "L") => 0.2,
        ("SC" | "SI" | "SA", "N") => 0.3,
        ("CR" | "IR" | "AR", "H") => 0.0,
        ("CR" | "IR" | "AR", "M") => 0.1,
        ("CR" | "IR" | "AR", "L") => 0.2,
        _ => 0.0,
    }
}

fn v4(vector: &str, body: &str) -> Result<f64, ScanError> {
    let raw = metrics(vector, body)?;
    for (k, v) in &raw {
        let allowed = V4_VALUES
            .iter()
            .find(|(m, _)| m == k)
            .ok_or_else(|| bad(vector, format!("unknown metric {k}")))?;
        if !allowed.1.contains(v) {
            return Err(bad(vector, format!("{k}:{v} is not a CVSS v4.0 value")));
        }
    }
    for k in [
        "AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA",
    ] {
        if !raw.contains_key(k) {
            return Err(bad(vector, format!("missing base metric {k}")));
        }
    }
    // the effective value: a modified metric when given, the defaults of E and CR/IR/AR
    let m = |k: &str| -> &str {
        let sel = raw.get(k).copied().unwrap_or("X");
        match (k, sel) {
            ("E", "X") => return "A",
            ("CR" | "IR" | "AR", "X") => return "H",
            _ => {}
        }
        let mk = format!("M{k}");
        match raw.get(mk.as_str()) {
            Some(v) if *v != "X" => v,
            _ => sel,
        }
    };
    if ["VC", "VI", "VA", "SC", "SI", "SA"]
        .iter()
        .all(|k| m(k) == "N")
    {
        return Ok(0.0);
    }
    let (av, pr, ui) = (m("AV"), m("PR"), m("UI"));
    let eq1 = if av == "N" && pr == "N" && ui == "N" {
        0
    } else if (av == "N" || pr == "N" || ui == "N") && av != "P" {
        1
    } else {
        2
    };
    let eq2 = if m("AC") == "L" && m("AT") == "N" {
        0
    } else {
        1
    };
    let (vc, vi, va) = (m("VC"), m("VI"), m("VA"));
    let eq3 = if vc == "H" && vi == "H" {
        0
    } else if vc == "H" || vi == "H" || va == "H" {
        1
    } else {
        2
    };
    let eq4 = if m("MSI") == "S" || m("MSA") == "S" {
        0
    } else if m("SC") == "H" || m("SI") == "H" || m("SA") == "H" {
        1
    } else {
        2
    };
    let eq5 = match m("E") {
        "P" => 1,
        "U" => 2,
        _ => 0,
    };
    let eq6 = if (m("CR") == "H" && vc == "H")
        || (m("IR") == "H" && vi == "H")
        || (m("AR") == "H" && va == "H")
    {
        0
    } else {
        1
    };
    let mv = [eq1, eq2, eq3, eq4, eq5, eq6];
    let value = lookup(&mv).ok_or_else(|| bad(vector, "no macro vector for these metrics"))?;
    let next = |i: usize| -> Option<f64> {
        let mut n = mv;
        n[i] += 1;
        lookup(&n)
    };
    let next_eq3eq6 = match (eq3, eq6) {
        (1, 1) | (0, 1) => next(2),
        (1, 0) => next(5),
        (0, 0) => match (next(5), next(2)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        },
        _ => {
            let mut n = mv;
            n[2] += 1;
            n[5] += 1;
            lookup(&n)
        }
    };
    let (eq1u, eq2u, eq3u, eq4u, eq6u) = (
        usize::from(eq1),
        usize::from(eq2),
        usize::from(eq3),
        usize::from(eq4),
        usize::from(eq6),
    );
    // the first of the highest-severity vectors of this macro vector that the vector does not
    // exceed; its distances to the vector place the score within the macro vector
    let metric_order = [
        "AV", "PR", "UI", "AC", "AT", "VC", "VI", "VA", "SC", "SI", "SA", "CR", "IR", "AR",
    ];
    let mut distances = [0.0f64; 14];
    'outer: for a in EQ1_MAX[eq1u] {
        for b in EQ2_MAX[eq2u] {
            for c in EQ3EQ6_MAX[eq3u][eq6u] {
                for d in EQ4_MAX[eq4u] {
                    let max = format!("{a}/{b}/{c}/{d}");
                    let mut maxm: HashMap<&str, &str> = HashMap::new();
                    for f in max.split('/') {
                        if let Some((k, v)) = f.split_once(':') {
                            maxm.insert(k, v);
                        }
                    }
                    for (i, k) in metric_order.iter().enumerate() {
                        distances[i] =
                            level(k, m(k)) - level(k, maxm.get(k).copied().unwrap_or(""));
                    }
                    if distances.iter().all(|d| *d >= 0.0) {
                        break 'outer;
                    }
                }
            }
        }
    }
    let sum = |r: std::ops::Range<usize>| -> f64 { distances[r].iter().sum() };
    let cur_eq1 = sum(0..3);
    let cur_eq2 = sum(3..5);
    let cur_eq3eq6 = sum(5..8) + sum(11..14);
    let cur_eq4 = sum(8..11);
    let step = 0.1;
    let mut n_lower = 0u32;
    let mut total = 0.0;
    let mut part = |next: Option<f64>, cur: f64, max_sev: f64| {
        if let Some(n) = next {
            let avail = value - n;
            if avail >= 0.0 {
                n_lower += 1;
                total += avail * (cur / (max_sev * step));
            }
        }
    };
    part(next(0), cur_eq1, EQ1_SEV[eq1u]);
    part(next(1), cur_eq2, EQ2_SEV[eq2u]);
    part(next_eq3eq6, cur_eq3eq6, EQ3EQ6_SEV[eq3u][eq6u]);
    part(next(3), cur_eq4, EQ4_SEV[eq4u]);
    // EQ5 has no distance within its macro vector: it counts, with nothing to add
    part(next(4), 0.0, 1.0);
    let mean = if n_lower == 0 {
        0.0
    } else {
        total / f64::from(n_lower)
    };
    let score = (value - mean).clamp(0.0, 10.0);
    Ok(((score + 1e-6) * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn published_scores() {
        // NVD / FIRST examples
        for (v, s) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0), // CVE-2021-44228
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9), // CVE-2014-0160 style
            ("CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                9.3,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N",
                0.0,
            ),
            (
                "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                8.5,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:P/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N",
                5.3,
            ),
        ] {
            assert_eq!(base_score(v).unwrap(), s, "{v}");
        }
        // CVSS v2 (NVD's published base scores)
        for (v, s) in [
            ("AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0),
            ("AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5), // CVE-2014-0160's neighbours
            ("AV:N/AC:L/Au:N/C:P/I:N/A:N", 5.0), // CVE-2014-0160
            ("AV:N/AC:M/Au:N/C:N/I:P/A:N", 4.3), // a typical XSS
            ("AV:L/AC:L/Au:N/C:C/I:C/A:C", 7.2), // a local root
            ("AV:N/AC:H/Au:S/C:N/I:N/A:P", 2.1),
            ("AV:N/AC:L/Au:N/C:N/I:N/A:N", 0.0),
            ("(AV:N/AC:L/Au:N/C:P/I:P/A:P)", 7.5),
            ("CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P/E:F/RL:OF/RC:C", 7.5),
        ] {
            assert_eq!(base_score(v).unwrap(), s, "{v}");
        }
        assert!(base_score("AV:N/AC:L/Au:N/C:X/I:P/A:P").is_err());
        assert!(base_score("AV:N/AC:L/Au:N/C:P/I:P").is_err());
        assert!(base_score("CVSS:3.1/AV:X").is_err());
        assert!(base_score("AV:N/AC:L").is_err());
    }
}
