//! "Did you mean …?": the valid name nearest to a mistyped one.

/// The candidate nearest to `input` (Damerau–Levenshtein distance, case-insensitive) when it is
/// close enough to be a typo of it: at most a third of the longer name's length, and at least
/// one edit allowed. Ties go to the first candidate.
pub fn nearest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let input = input.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = strsim::damerau_levenshtein(&input, &c.to_ascii_lowercase());
        let allowed = (input.chars().count().max(c.chars().count()) / 3).max(1);
        if d == 0 || d > allowed {
            continue;
        }
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn typos_get_the_nearest_name_and_strangers_none() {
        let profiles = ["static", "cc", "python3", "nodejs", "java"];
        assert_eq!(nearest("pyhton3", profiles), Some("python3"));
        assert_eq!(nearest("nodjs", profiles), Some("nodejs"));
        assert_eq!(nearest("STATIC", ["static"]), None, "equal is not a typo");
        assert_eq!(nearest("ruby", profiles), None);
        let transports = ["oci", "oci-archive", "docker-archive", "docker"];
        assert_eq!(nearest("oci-archve", transports), Some("oci-archive"));
        assert_eq!(nearest("dokcer", transports), Some("docker"));
        assert_eq!(nearest("localhost", transports), None);
    }
}
