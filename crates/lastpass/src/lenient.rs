//! Lenient `deserialize_with` helpers: every scalar variant the reference lists decodes into one
//! normalised Rust type (flags, counters, scores, dates, cursors, string lists, PHP-style `[]`
//! for empty maps).
//!
//! Visitors are hand-written (no intermediate `serde_json::Value`) so that decoding a 2,000-user
//! `getuserdata` page stays fast.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

// ---------------------------------------------------------------------------------------------
// Flags: `"0"`/`0`/`false`/`"1"`/`1`/`true` (plus `""`/`null` → false, `"yes"`/`"no"`, `"on"`).
// ---------------------------------------------------------------------------------------------

fn parse_flag_str(s: &str) -> Option<bool> {
    const TRUE: [&str; 6] = ["1", "true", "yes", "y", "on", "t"];
    const FALSE: [&str; 6] = ["0", "false", "no", "n", "off", "f"];
    let t = s.trim();
    if t.is_empty() {
        return Some(false);
    }
    // Compared in place: no lower-cased copy per flag on the hot `getuserdata` path.
    if TRUE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Some(true)
    } else if FALSE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Some(false)
    } else {
        // `f64::from_str` is case-insensitive for `inf`/`nan` and the exponent.
        t.parse::<f64>().ok().map(|v| v != 0.0)
    }
}

struct FlagVisitor;

impl<'de> Visitor<'de> for FlagVisitor {
    type Value = Option<bool>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a flag (true/false, 0/1, \"0\"/\"1\")")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v != 0))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v != 0))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v != 0.0))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_flag_str(v)
            .map(Some)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A flag; `null` and `""` are `false`.
pub(crate) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(d.deserialize_any(FlagVisitor)?.unwrap_or(false))
}

/// A flag that may be `null` (→ `None`).
pub(crate) fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    d.deserialize_any(FlagVisitor)
}

// ---------------------------------------------------------------------------------------------
// Counters: number, numeric string, `null`, `""` → Option<u64>.
// ---------------------------------------------------------------------------------------------

fn parse_counter_str(s: &str) -> Result<Option<u64>, ()> {
    let t = s.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("null") {
        return Ok(None);
    }
    if let Ok(v) = t.parse::<u64>() {
        return Ok(Some(v));
    }
    match t.parse::<f64>() {
        Ok(f) => float_counter(f).ok_or(()),
        Err(_) => Err(()),
    }
}

fn float_counter(f: f64) -> Option<Option<u64>> {
    if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 {
        Some(Some(f as u64))
    } else {
        None
    }
}

struct CounterVisitor;

impl<'de> Visitor<'de> for CounterVisitor {
    type Value = Option<u64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a non-negative count (number, numeric string, null or \"\")")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        float_counter(v).ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &self))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_counter_str(v).map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

pub(crate) fn counter<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_any(CounterVisitor)
}

// ---------------------------------------------------------------------------------------------
// Scores: number, numeric string, `null`, `""` → Option<f64>.
// ---------------------------------------------------------------------------------------------

struct ScoreVisitor;

impl<'de> Visitor<'de> for ScoreVisitor {
    type Value = Option<f64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a score (number, numeric string, null or \"\")")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = v.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("null") {
            return Ok(None);
        }
        t.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

pub(crate) fn score<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    d.deserialize_any(ScoreVisitor)
}

// ---------------------------------------------------------------------------------------------
// Strings: scalars become strings; `null` → "" (or None for the optional form).
// ---------------------------------------------------------------------------------------------

struct StringVisitor;

impl<'de> Visitor<'de> for StringVisitor {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or scalar")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A string; scalars are stringified and `null` is `""`.
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(d.deserialize_any(StringVisitor)?.unwrap_or_default())
}

/// An optional string; `null` and `""` are `None`.
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(d.deserialize_any(StringVisitor)?.filter(|s| !s.is_empty()))
}

// ---------------------------------------------------------------------------------------------
// Date-times: `"YYYY-MM-DD HH:MM:SS"`, ISO-8601 variants; `""`/`null`/zero dates → None.
// ---------------------------------------------------------------------------------------------

fn two(b: &[u8]) -> Option<u32> {
    let (a, c) = (b[0].wrapping_sub(b'0'), b[1].wrapping_sub(b'0'));
    (a < 10 && c < 10).then(|| (a * 10 + c) as u32)
}

/// Fast path for the exact LastPass format.
fn parse_lastpass_datetime(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b' ' || b[10] == b'T') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = two(&b[0..2])? * 100 + two(&b[2..4])?;
    let date = NaiveDate::from_ymd_opt(year as i32, two(&b[5..7])?, two(&b[8..10])?)?;
    let time = NaiveTime::from_hms_opt(two(&b[11..13])?, two(&b[14..16])?, two(&b[17..19])?)?;
    Some(date.and_time(time))
}

/// `Ok(None)` for the "never" encodings, `Err` for text that is not a date-time.
fn parse_datetime(s: &str) -> Result<Option<NaiveDateTime>, ()> {
    let t = s.trim();
    if t.is_empty()
        || t.starts_with("0000-00-00")
        || t.eq_ignore_ascii_case("never")
        || t.eq_ignore_ascii_case("null")
    {
        return Ok(None);
    }
    if let Some(dt) = parse_lastpass_datetime(t) {
        return Ok(Some(dt));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(Some(dt));
        }
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(Some(dt.naive_local()));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(Some(d.and_time(NaiveTime::MIN)));
    }
    Err(())
}

struct DateVisitor;

impl<'de> Visitor<'de> for DateVisitor {
    type Value = Option<NaiveDateTime>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a date-time \"YYYY-MM-DD HH:MM:SS\", \"\" or null")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_datetime(v).map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        // A Unix timestamp (seconds); `0` means never.
        if v == 0 {
            return Ok(None);
        }
        chrono::DateTime::from_timestamp(v as i64, 0)
            .map(|d| Some(d.naive_utc()))
            .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        if v <= 0 {
            return Ok(None);
        }
        self.visit_u64(v as u64)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        // PHP's `false` for "no date".
        if v {
            Err(E::invalid_value(de::Unexpected::Bool(v), &self))
        } else {
            Ok(None)
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

pub(crate) fn datetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDateTime>, D::Error> {
    d.deserialize_any(DateVisitor)
}

// ---------------------------------------------------------------------------------------------
// Cursors (`reporting` `next`): number, numeric string, `null`, `""`.
// ---------------------------------------------------------------------------------------------

struct CursorVisitor;

impl<'de> Visitor<'de> for CursorVisitor {
    type Value = Option<i64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a cursor (number, numeric string or null)")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if v.is_finite() && v.abs() < 9.0e18 {
            Ok(Some(v as i64))
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = v.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("null") {
            return Ok(None);
        }
        if let Ok(n) = t.parse::<i64>() {
            return Ok(Some(n));
        }
        match t.parse::<f64>() {
            Ok(f) => self.visit_f64(f),
            Err(_) => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        if v {
            Err(E::invalid_value(de::Unexpected::Bool(v), &self))
        } else {
            Ok(None)
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

pub(crate) fn cursor<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_any(CursorVisitor)
}

// ---------------------------------------------------------------------------------------------
// Messages (`error` / `errors`): string, array of strings, `null`, object → Vec<String>.
// ---------------------------------------------------------------------------------------------

fn value_to_message(v: serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Bool(false) => None,
        other => Some(other.to_string()),
    }
}

pub(crate) fn messages_from_value(v: serde_json::Value) -> Vec<String> {
    let out: Vec<String> = match v {
        serde_json::Value::Array(items) => {
            items.into_iter().flat_map(messages_from_value).collect()
        }
        serde_json::Value::Object(map) => map
            .into_iter()
            .flat_map(|(_, v)| messages_from_value(v))
            .collect(),
        other => value_to_message(other).into_iter().collect(),
    };
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

pub(crate) fn messages<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
    Ok(messages_from_value(v))
}

// ---------------------------------------------------------------------------------------------
// String lists: array, `null`, `{}`/PHP map (values), a single string.
// ---------------------------------------------------------------------------------------------

struct StringListVisitor;

impl<'de> Visitor<'de> for StringListVisitor {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<LenientOptString>()? {
            if let Some(s) = item.0 {
                out.push(s);
            }
        }
        Ok(out)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some((_, v)) = map.next_entry::<IgnoredAny, LenientOptString>()? {
            if let Some(s) = v.0 {
                out.push(s);
            }
        }
        Ok(out)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(if v.is_empty() {
            Vec::new()
        } else {
            vec![v.to_owned()]
        })
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        if v {
            Err(E::invalid_type(de::Unexpected::Bool(v), &self))
        } else {
            Ok(Vec::new())
        }
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

pub(crate) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(StringListVisitor)
}

/// `Some(list)` when present (even `[]`), `None` for `null`.
pub(crate) fn opt_string_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of strings or null")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            string_list(d).map(Some)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            StringListVisitor.visit_seq(seq).map(Some)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            StringListVisitor.visit_map(map).map(Some)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            StringListVisitor.visit_str(v).map(Some)
        }
    }
    d.deserialize_any(V)
}

/// A string-ish element (`null` skipped).
pub(crate) struct LenientOptString(pub Option<String>);

impl<'de> serde::Deserialize<'de> for LenientOptString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StringVisitor).map(LenientOptString)
    }
}

// ---------------------------------------------------------------------------------------------
// Ordered maps that PHP may send as `[]` when empty: `{"k": v, …}` | `[]` | `null`.
// ---------------------------------------------------------------------------------------------

/// Entries in wire order. A non-empty array is accepted when `T` itself carries its key (the
/// caller decides what to do with `""` keys: they come back as `""`).
pub(crate) struct OrderedMap<T>(pub Vec<(String, T)>);

impl<T> Default for OrderedMap<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, T: DeserializeOwned> serde::Deserialize<'de> for OrderedMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for V<T> {
            type Value = OrderedMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object (or [] when empty)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((k, v)) = map.next_entry::<String, T>()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<T>()? {
                    out.push((String::new(), v));
                }
                Ok(OrderedMap(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap::default())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v.is_empty() {
                    Ok(OrderedMap::default())
                } else {
                    Err(E::invalid_type(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                if v {
                    Err(E::invalid_type(de::Unexpected::Bool(v), &self))
                } else {
                    Ok(OrderedMap::default())
                }
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Group name → members; `[]`/`null` → empty.
pub(crate) struct GroupMap(pub Vec<(String, Vec<String>)>);

impl<'de> serde::Deserialize<'de> for GroupMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m: OrderedMap<StringList> = serde::Deserialize::deserialize(d)?;
        Ok(GroupMap(m.0.into_iter().map(|(k, v)| (k, v.0)).collect()))
    }
}

/// Newtype over [`string_list`] for use as a generic parameter.
pub(crate) struct StringList(pub Vec<String>);

impl<'de> serde::Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string_list(d).map(StringList)
    }
}

// ---------------------------------------------------------------------------------------------
// attribs: object of string → scalar (non-strings stringified; nested values as JSON text).
// ---------------------------------------------------------------------------------------------

pub(crate) fn attribs<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let v = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Object(map) => map
            .into_iter()
            .filter_map(|(k, v)| {
                let s = match v {
                    serde_json::Value::Null => return None,
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                Some((k, s))
            })
            .collect(),
        // `[]`, `null`, `""`: no attributes. A JSON-encoded object as a string is unpacked.
        serde_json::Value::String(s) if s.trim_start().starts_with('{') => {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&s)
                .map(|m| {
                    m.into_iter()
                        .map(|(k, v)| match v {
                            serde_json::Value::String(s) => (k, s),
                            other => (k, other.to_string()),
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
        _ => BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct F {
        #[serde(default, deserialize_with = "flag")]
        f: bool,
    }
    #[derive(Deserialize)]
    struct C {
        #[serde(default, deserialize_with = "counter")]
        c: Option<u64>,
    }
    #[derive(Deserialize)]
    struct S {
        #[serde(default, deserialize_with = "score")]
        s: Option<f64>,
    }
    #[derive(Deserialize)]
    struct N {
        #[serde(default, deserialize_with = "cursor")]
        n: Option<i64>,
    }
    #[derive(Deserialize)]
    struct Dt {
        #[serde(default, deserialize_with = "datetime")]
        d: Option<NaiveDateTime>,
    }

    fn f(json: &str) -> Result<bool, serde_json::Error> {
        serde_json::from_str::<F>(&format!("{{\"f\":{json}}}")).map(|x| x.f)
    }
    fn c(json: &str) -> Result<Option<u64>, serde_json::Error> {
        serde_json::from_str::<C>(&format!("{{\"c\":{json}}}")).map(|x| x.c)
    }

    #[test]
    fn flags_every_variant() {
        for (j, want) in [
            ("\"0\"", false),
            ("0", false),
            ("false", false),
            ("\"1\"", true),
            ("1", true),
            ("true", true),
            ("null", false),
            ("\"\"", false),
            ("\"true\"", true),
            ("\"false\"", false),
            ("\"on\"", true),
            ("1.0", true),
        ] {
            assert_eq!(f(j).unwrap(), want, "{j}");
        }
        assert!(f("\"maybe\"").is_err());
        assert!(!serde_json::from_str::<F>("{}").unwrap().f);
    }

    #[test]
    fn counters_every_variant() {
        assert_eq!(c("null").unwrap(), None);
        assert_eq!(c("\"\"").unwrap(), None);
        assert_eq!(c("0").unwrap(), Some(0));
        assert_eq!(c("72").unwrap(), Some(72));
        assert_eq!(c("\"19\"").unwrap(), Some(19));
        assert_eq!(c("\" 19 \"").unwrap(), Some(19));
        assert_eq!(c("3.0").unwrap(), Some(3));
        assert!(c("-1").is_err());
        assert!(c("\"abc\"").is_err());
        assert!(c("1.5").is_err());
        assert_eq!(serde_json::from_str::<C>("{}").unwrap().c, None);
    }

    #[test]
    fn scores_cursors_dates() {
        let s = |j: &str| serde_json::from_str::<S>(&format!("{{\"s\":{j}}}")).map(|x| x.s);
        assert_eq!(s("\"83.2\"").unwrap(), Some(83.2));
        assert_eq!(s("99").unwrap(), Some(99.0));
        assert_eq!(s("null").unwrap(), None);
        assert_eq!(s("\"\"").unwrap(), None);
        assert!(s("\"x\"").is_err());
        let n = |j: &str| serde_json::from_str::<N>(&format!("{{\"n\":{j}}}")).map(|x| x.n);
        assert_eq!(n("null").unwrap(), None);
        assert_eq!(n("1437126711000000").unwrap(), Some(1_437_126_711_000_000));
        assert_eq!(
            n("\"1437126711000000\"").unwrap(),
            Some(1_437_126_711_000_000)
        );
        assert_eq!(n("\"\"").unwrap(), None);
        let d = |j: &str| serde_json::from_str::<Dt>(&format!("{{\"d\":{j}}}")).map(|x| x.d);
        let want = NaiveDateTime::parse_from_str("2022-05-11 11:02:26", "%Y-%m-%d %H:%M:%S").ok();
        assert_eq!(d("\"2022-05-11 11:02:26\"").unwrap(), want);
        assert_eq!(d("\"2022-05-11T11:02:26\"").unwrap(), want);
        assert_eq!(d("\"2022-05-11T11:02:26Z\"").unwrap(), want);
        assert_eq!(d("\"\"").unwrap(), None);
        assert_eq!(d("null").unwrap(), None);
        assert_eq!(d("\"0000-00-00 00:00:00\"").unwrap(), None);
        assert!(d("\"2022-13-11 11:02:26\"").is_err());
        assert!(d("\"yesterday\"").is_err());
    }

    #[test]
    fn lists_and_maps() {
        #[derive(Deserialize)]
        struct L {
            #[serde(default, deserialize_with = "string_list")]
            l: Vec<String>,
        }
        let l = |j: &str| serde_json::from_str::<L>(&format!("{{\"l\":{j}}}")).map(|x| x.l);
        assert_eq!(l("[]").unwrap(), Vec::<String>::new());
        assert_eq!(l("{}").unwrap(), Vec::<String>::new());
        assert_eq!(l("null").unwrap(), Vec::<String>::new());
        assert_eq!(l("[\"a\",null,\"b\"]").unwrap(), vec!["a", "b"]);
        assert_eq!(l("{\"0\":\"a\",\"1\":\"b\"}").unwrap(), vec!["a", "b"]);
        let g: GroupMap = serde_json::from_str("[]").unwrap();
        assert!(g.0.is_empty());
        let g: GroupMap = serde_json::from_str("{\"B\":[\"x\"],\"A\":[]}").unwrap();
        assert_eq!(g.0[0].0, "B", "wire order kept");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(0x1b_b1d6e), ..ProptestConfig::default() })]

        #[test]
        fn flag_decoder_agrees_across_encodings(b in any::<bool>(), form in 0u8..4) {
            let j = match (form, b) {
                (0, b) => b.to_string(),
                (1, b) => (b as u8).to_string(),
                (2, b) => format!("\"{}\"", b as u8),
                (_, b) => format!("\"{b}\""),
            };
            prop_assert_eq!(f(&j).unwrap(), b);
        }

        #[test]
        fn counter_decoder_agrees_across_encodings(n in any::<u64>(), form in 0u8..3) {
            let j = match form {
                0 => n.to_string(),
                1 => format!("\"{n}\""),
                _ => format!("\" {n}\""),
            };
            prop_assert_eq!(c(&j).unwrap(), Some(n));
        }

        #[test]
        fn counter_decoder_never_panics(s in ".{0,12}") {
            let j = serde_json::to_string(&s).unwrap();
            let r = c(&j);
            if let Ok(Some(v)) = r {
                prop_assert_eq!(s.trim().parse::<f64>().unwrap(), v as f64);
            }
        }

        #[test]
        fn flag_decoder_never_panics(s in ".{0,8}") {
            let j = serde_json::to_string(&s).unwrap();
            let _ = f(&j);
        }
    }
}
