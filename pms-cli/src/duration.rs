//! Human durations for flags like `--since 15m`: `30s`, `10m`, `2h`, `1d`, `1w`, combined
//! (`1h30m`).

use std::time::Duration;

/// Parses `1h30m`-style durations; a bare number is seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(format!(
                    "invalid duration `{text}`: unknown unit `{c}` (use s, m, h, d, w)"
                ));
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("invalid duration `{text}`: expected a number before `{c}`"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration `{text}` is too long"))?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!(
            "invalid duration `{text}`: `{number}` has no unit (use s, m, h, d, w)"
        ));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse("45").unwrap(), Duration::from_secs(45));
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse("1w").unwrap(), Duration::from_secs(604_800));
        for bad in ["", "5x", "m", "10m5", "-3m"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
