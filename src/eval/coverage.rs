//! Coverage reports, read: LCOV or a Go cover profile, and the share of a change's lines they
//! cover.

use std::collections::{HashMap, HashSet};

/// Lines covered, by file, from a coverage report: LCOV (`SF:path`, `DA:line,hits`) or a Go
/// cover profile (`mode: ...`, then `path:l1.c1,l2.c2 statements count`). Lines a report
/// lists are instrumented; those with a count above 0 covered. Paths as the report gives them.
pub fn read_coverage(report: &str) -> HashMap<String, HashMap<u32, bool>> {
    let mut files: HashMap<String, HashMap<u32, bool>> = HashMap::new();
    if report.trim_start().starts_with("mode:") {
        for line in report.lines().skip(1) {
            let Some((path, rest)) = line.rsplit_once(':') else {
                continue;
            };
            let parts: Vec<&str> = rest.split([',', ' ']).collect();
            let (Some(from), Some(to), Some(count)) = (parts.first(), parts.get(1), parts.get(3))
            else {
                continue;
            };
            let line_of = |p: &str| p.split('.').next().and_then(|l| l.parse::<u32>().ok());
            let (Some(from), Some(to), Ok(count)) =
                (line_of(from), line_of(to), count.parse::<u64>())
            else {
                continue;
            };
            let lines = files.entry(path.to_string()).or_default();
            for l in from..=to {
                let covered = lines.entry(l).or_insert(false);
                *covered |= count > 0;
            }
        }
        return files;
    }
    let mut current: Option<String> = None;
    for line in report.lines() {
        if let Some(path) = line.strip_prefix("SF:") {
            current = Some(path.trim().to_string());
        } else if let (Some(path), Some(da)) = (&current, line.strip_prefix("DA:")) {
            let mut parts = da.split(',');
            let (Some(Ok(n)), Some(hits)) = (parts.next().map(str::parse::<u32>), parts.next())
            else {
                continue;
            };
            let hit = hits.trim().parse::<f64>().is_ok_and(|h| h > 0.0);
            let covered = files
                .entry(path.clone())
                .or_default()
                .entry(n)
                .or_insert(false);
            *covered |= hit;
        } else if line.trim() == "end_of_record" {
            current = None;
        }
    }
    files
}

/// The share of `changed` lines (path, head-side lines) that the report instruments and
/// covers. Reports give absolute paths or (Go) import paths, so a changed path is matched by
/// its end. None when no changed line is instrumented.
pub fn covered_share(
    coverage: &HashMap<String, HashMap<u32, bool>>,
    changed: &[(String, Vec<u32>)],
) -> Option<f64> {
    let (mut instrumented, mut covered) = (0usize, 0usize);
    for (path, lines) in changed {
        // The report's path for this file: the same, else the shortest that ends with it
        // (`/tmp/x/pkg/a.go` or `example.com/m/pkg/a.go` for `pkg/a.go`, not
        // `example.com/m/sub/pkg/a.go`), else one it ends with.
        let matching: Vec<&HashMap<u32, bool>> = coverage
            .get(path)
            .or_else(|| {
                coverage
                    .iter()
                    .filter(|(p, _)| p.ends_with(&format!("/{path}")))
                    .min_by_key(|(p, _)| p.len())
                    .map(|(_, l)| l)
            })
            .or_else(|| {
                coverage
                    .iter()
                    .filter(|(p, _)| path.ends_with(&format!("/{p}")))
                    .max_by_key(|(p, _)| p.len())
                    .map(|(_, l)| l)
            })
            .into_iter()
            .collect();
        let lines: HashSet<&u32> = lines.iter().collect();
        for line in lines {
            let seen: Vec<bool> = matching
                .iter()
                .filter_map(|m| m.get(line).copied())
                .collect();
            if !seen.is_empty() {
                instrumented += 1;
                if seen.contains(&true) {
                    covered += 1;
                }
            }
        }
    }
    (instrumented > 0).then(|| covered as f64 / instrumented as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcov_and_go_profiles_give_the_share_of_changed_lines_covered() {
        let lcov = "TN:\nSF:/tmp/x/pkg/pager.py\nDA:1,1\nDA:2,0\nDA:3,4\nend_of_record\nSF:other.py\nDA:2,1\nend_of_record\n";
        let cov = read_coverage(lcov);
        // Lines 2 and 3 changed and instrumented, 3 covered; line 9 is not instrumented.
        let changed = vec![("pkg/pager.py".to_string(), vec![2, 3, 9])];
        assert_eq!(covered_share(&cov, &changed), Some(0.5));
        // `context.go` is the root's, not `middleware/context.go`'s, whichever comes first.
        let two = "mode: set\nexample.com/m/middleware/context.go:1.1,1.9 1 1\nexample.com/m/context.go:1.1,1.9 1 0\n";
        let cov2 = read_coverage(two);
        assert_eq!(
            covered_share(&cov2, &[("context.go".into(), vec![1])]),
            Some(0.0)
        );
        let go = "mode: set\nexample.com/m/pkg/pager.go:3.14,5.2 1 1\nexample.com/m/pkg/pager.go:7.1,8.2 1 0\n";
        let cov = read_coverage(go);
        let changed = vec![("pkg/pager.go".to_string(), vec![4, 5, 7, 20])];
        assert_eq!(covered_share(&cov, &changed), Some(2.0 / 3.0));
        assert_eq!(covered_share(&cov, &[("nope.go".into(), vec![1])]), None);
    }
}
