//! Money as people read it: minor units (the API's integers) shown in major units with the
//! currency's exponent (ISO 4217: JPY has none, BHD three, most two), and typed amounts parsed
//! back into minor units without floating point.

/// Decimal places of a currency's minor unit.
pub fn exponent(currency: &str) -> u32 {
    match currency.to_ascii_uppercase().as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// `123456` USD → `1,234.56 USD`; negative amounts keep their sign.
pub fn format(minor: i64, currency: &str) -> String {
    let exp = exponent(currency);
    let scale = 10u64.pow(exp);
    let abs = minor.unsigned_abs();
    let (major, fraction) = (abs / scale, abs % scale);
    let digits = major.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if minor < 0 { "-" } else { "" };
    if exp == 0 {
        format!("{sign}{grouped} {currency}")
    } else {
        format!(
            "{sign}{grouped}.{fraction:0width$} {currency}",
            width = exp as usize
        )
    }
}

/// `"12.5"` USD → `1250`. Rejects more decimals than the currency has, signs and garbage.
pub fn parse(text: &str, currency: &str) -> Result<i64, String> {
    let exp = exponent(currency) as usize;
    let text = text.trim().replace(',', "");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let valid = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !valid(whole) || !valid(fraction) {
        return Err(format!("`{text}` is not an amount (e.g. 12.50)"));
    }
    if fraction.len() > exp {
        return Err(format!("{currency} has {exp} decimal places"));
    }
    let padded = format!("{fraction:0<exp$}");
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| "amount too large".to_owned())?
    };
    let fraction: i64 = if padded.is_empty() {
        0
    } else {
        padded.parse().map_err(|_| "bad decimals".to_owned())?
    };
    whole
        .checked_mul(10i64.pow(exp as u32))
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(|| "amount too large".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_the_currency_exponent() {
        assert_eq!(format(123456, "USD"), "1,234.56 USD");
        assert_eq!(format(5, "EUR"), "0.05 EUR");
        assert_eq!(format(-1250, "USD"), "-12.50 USD");
        assert_eq!(format(1500, "JPY"), "1,500 JPY");
        assert_eq!(format(1234, "KWD"), "1.234 KWD");
        assert_eq!(format(0, "USD"), "0.00 USD");
    }

    #[test]
    fn parses_major_units_into_minor() {
        assert_eq!(parse("12.5", "USD"), Ok(1250));
        assert_eq!(parse("12", "USD"), Ok(1200));
        assert_eq!(parse("1,234.56", "USD"), Ok(123456));
        assert_eq!(parse(".5", "USD"), Ok(50));
        assert_eq!(parse("1500", "JPY"), Ok(1500));
        assert!(parse("1.5", "JPY").is_err());
        assert!(parse("1.234", "USD").is_err());
        assert!(parse("-3", "USD").is_err());
        assert!(parse("abc", "USD").is_err());
        assert!(parse("", "USD").is_err());
    }
}
