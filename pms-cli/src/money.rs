//! Money as people read and type it. The API carries integers in minor units (cents) plus an
//! ISO 4217 code; people see and type major units with the currency's exponent (JPY none, USD
//! two, BHD three), parsed without floating point. The CLI and the TUI both use this module.

use pms_proto::currency;

/// Decimal places of a currency's minor unit. Codes outside ISO 4217 (data older than the
/// server's check) are shown with two, the most common exponent.
pub fn exponent(currency: &str) -> u32 {
    currency::exponent(&currency.trim().to_ascii_uppercase()).unwrap_or(2)
}

/// `123456` USD → `1234.56`: the amount alone, for table and CSV cells next to a currency column
/// (no grouping, so a spreadsheet reads it as a number).
pub fn decimal(minor: i64, currency: &str) -> String {
    let (sign, whole, fraction, exp) = split(minor, currency);
    if exp == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction:0width$}", width = exp as usize)
    }
}

/// `123456` USD → `1,234.56 USD`, for sentences and detail views; negative amounts keep their sign.
pub fn format(minor: i64, currency: &str) -> String {
    let (sign, whole, fraction, exp) = split(minor, currency);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if exp == 0 {
        format!("{sign}{grouped} {currency}")
    } else {
        format!(
            "{sign}{grouped}.{fraction:0width$} {currency}",
            width = exp as usize
        )
    }
}

fn split(minor: i64, currency: &str) -> (&'static str, u64, u64, u32) {
    let exp = exponent(currency);
    let scale = 10u64.pow(exp);
    let abs = minor.unsigned_abs();
    let sign = if minor < 0 { "-" } else { "" };
    (sign, abs / scale, abs % scale, exp)
}

/// `"12.5"` USD → `1250`; `"1,234.56"` → `123456`. Rejects more decimals than the currency has,
/// signs, garbage, and currencies that are not ISO 4217.
pub fn parse(text: &str, currency: &str) -> Result<i64, String> {
    let code = currency.trim().to_ascii_uppercase();
    let Some(exp) = currency::exponent(&code) else {
        return Err(format!("`{currency}` is not an ISO 4217 currency code"));
    };
    let exp = exp as usize;
    let text = text.trim().replace(',', "");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(format!("`{text}` is not an amount (e.g. 12.50)"));
    }
    if fraction.len() > exp {
        return Err(match exp {
            0 => format!("{code} has no decimals: `{text}`"),
            1 => format!("{code} has 1 decimal place: `{text}`"),
            _ => format!("{code} has {exp} decimal places: `{text}`"),
        });
    }
    let too_large = || format!("`{text}` is too large an amount");
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let fraction: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<exp$}")
            .parse()
            .map_err(|_| too_large())?
    };
    whole
        .checked_mul(10i64.pow(exp as u32))
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(too_large)
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
        assert_eq!(format(12345, "CLF"), "1.2345 CLF");
        assert_eq!(format(0, "USD"), "0.00 USD");
        assert_eq!(format(7500, "usd"), "75.00 usd");
    }

    #[test]
    fn decimals_are_plain_numbers() {
        assert_eq!(decimal(123456, "USD"), "1234.56");
        assert_eq!(decimal(-5, "USD"), "-0.05");
        assert_eq!(decimal(1500, "JPY"), "1500");
        assert_eq!(decimal(1001, "BHD"), "1.001");
    }

    #[test]
    fn parses_major_units_into_minor() {
        assert_eq!(parse("12.5", "USD"), Ok(1250));
        assert_eq!(parse("45.00", "USD"), Ok(4500));
        assert_eq!(parse("12", "usd"), Ok(1200));
        assert_eq!(parse("1,234.56", "USD"), Ok(123456));
        assert_eq!(parse(".5", "USD"), Ok(50));
        assert_eq!(parse("1500", "JPY"), Ok(1500));
        assert_eq!(parse("1.5", "BHD"), Ok(1500));
        assert_eq!(
            parse("1.5", "JPY").unwrap_err(),
            "JPY has no decimals: `1.5`"
        );
        assert_eq!(
            parse("1.234", "USD").unwrap_err(),
            "USD has 2 decimal places: `1.234`"
        );
        assert!(parse("-3", "USD").is_err());
        assert!(parse("abc", "USD").is_err());
        assert!(parse("", "USD").is_err());
        assert!(parse("99999999999999999999", "USD").is_err());
        assert_eq!(
            parse("1", "XYZ").unwrap_err(),
            "`XYZ` is not an ISO 4217 currency code"
        );
    }

    #[test]
    fn round_trips() {
        for (minor, cur) in [(123456, "USD"), (7, "BHD"), (900, "JPY"), (0, "EUR")] {
            assert_eq!(parse(&decimal(minor, cur), cur), Ok(minor));
            assert_eq!(
                parse(format(minor, cur).trim_end_matches(cur), cur),
                Ok(minor)
            );
        }
    }
}
