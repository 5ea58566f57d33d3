//! `pms events tail`: prints each event as it arrives (flushed per line, so pipes see it at
//! once), keeps going across disconnects and server restarts, and stops on Ctrl-C (exit 0) or
//! when stdout is closed.

use clap::Args;
use pms_cli::api::StreamStart;
use pms_cli::output::{self, Format, shapes::EventLine};
use pms_cli::sse::{self, Backoff, SseEvent, TailNotice};
use pms_cli::{Error, Result};
use serde_json::Value;

use super::super::App;

#[derive(Debug, Args)]
pub struct TailArgs {
    /// Only events of this type (PATIENT_CREATED, PAYMENT_RECEIVED, …; any case).
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    pub event_type: Option<String>,
    /// Start with the events of the last DURATION (30s, 15m, 2h, 1d).
    #[arg(long, value_name = "DURATION", value_parser = parse_since, conflicts_with = "from_beginning")]
    pub since: Option<std::time::Duration>,
    /// Start with every stored event.
    #[arg(long)]
    pub from_beginning: bool,
    /// Keep following (the default; `tail -f` habit).
    #[arg(short, long)]
    pub follow: bool,
}

/// One of the event types analytics knows: an unknown one would stream nothing, forever.
pub fn parse_type(raw: &str) -> std::result::Result<String, String> {
    let upper = raw.trim().to_ascii_uppercase();
    if pms_proto::rest::EVENT_TYPES.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(format!(
            "`{raw}` is not an event type; expected one of {}",
            pms_proto::rest::EVENT_TYPES.join(", ")
        ))
    }
}

fn parse_since(raw: &str) -> std::result::Result<std::time::Duration, String> {
    pms_cli::duration::parse(raw)
}

pub async fn run(app: &App, args: TailArgs) -> Result<()> {
    super::super::reject_csv(app.style, "events tail")?;
    let client = app.client()?;
    let since = match args.since {
        Some(d) => Some(
            chrono::Utc::now()
                - chrono::TimeDelta::from_std(d)
                    .map_err(|_| Error::Usage("--since is too long".into()))?,
        ),
        None => None,
    };
    let start = StreamStart {
        event_type: args.event_type,
        last_event_id: args.from_beginning.then(|| "0".to_owned()),
        since,
    };
    let json = app.style.format == Format::Json;
    let on_event = |event: &SseEvent| app.print(&render(event, json)?);
    let on_notice = |notice: &TailNotice| match notice {
        TailNotice::Disconnected { reason, retry_in } => eprintln!(
            "-- event stream interrupted ({reason}); reconnecting in {:.1}s",
            retry_in.as_secs_f32()
        ),
        TailNotice::Reconnected { after, .. } => match after {
            Some(id) => eprintln!("-- reconnected; resuming after event {id}"),
            None => eprintln!("-- reconnected"),
        },
    };
    tokio::select! {
        result = sse::tail(&client, start, Backoff::default(), on_event, on_notice) => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// One output line for an event.
fn render(event: &SseEvent, json: bool) -> Result<String> {
    let data = serde_json::from_str::<Value>(&event.data)
        .unwrap_or_else(|_| Value::String(event.data.clone()));
    if json {
        return output::json_line(&EventLine {
            id: event.id.clone(),
            kind: event.event.clone(),
            data,
        });
    }
    let at = ["occurredAt", "occurred_at", "timestamp", "time"]
        .iter()
        .find_map(|k| data.get(k).and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| pms_cli::output::columns_time(&chrono::Utc::now()));
    let id = event
        .id
        .as_deref()
        .map(|i| format!("#{i}  "))
        .unwrap_or_default();
    // A StoredEvent: its topic and key, then its own data; anything else as it came.
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let topic = data.get("topic").and_then(Value::as_str);
    let key = data.get("key").and_then(Value::as_str);
    let body = match (topic, key, data.get("data")) {
        (Some(topic), Some(key), Some(inner)) => format!("{topic}:{key}  {}", text(inner)),
        _ => text(&data),
    };
    Ok(format!("{at}  {}  {id}{body}\n", event.event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_for_people_and_for_jq() {
        let event = SseEvent {
            id: Some("7".into()),
            event: "PATIENT_CREATED".into(),
            data: r#"{"occurredAt":"2024-11-28T09:30:00Z","patientId":"p1"}"#.into(),
        };
        assert_eq!(
            render(&event, false).unwrap(),
            "2024-11-28T09:30:00Z  PATIENT_CREATED  #7  {\"occurredAt\":\"2024-11-28T09:30:00Z\",\"patientId\":\"p1\"}\n"
        );
        assert_eq!(
            render(&event, true).unwrap(),
            "{\"id\":\"7\",\"type\":\"PATIENT_CREATED\",\"data\":{\"occurredAt\":\"2024-11-28T09:30:00Z\",\"patientId\":\"p1\"}}\n"
        );
        let stored = SseEvent {
            id: Some("8".into()),
            event: "PATIENT_UPDATED".into(),
            data: r#"{"seq":8,"topic":"patient","type":"PATIENT_UPDATED","key":"p1","occurredAt":"2024-11-28T09:31:00Z","data":{"version":2}}"#.into(),
        };
        assert_eq!(
            render(&stored, false).unwrap(),
            "2024-11-28T09:31:00Z  PATIENT_UPDATED  #8  patient:p1  {\"version\":2}\n"
        );
        let text = SseEvent {
            id: None,
            event: "message".into(),
            data: "plain".into(),
        };
        assert_eq!(
            render(&text, true).unwrap(),
            "{\"id\":null,\"type\":\"message\",\"data\":\"plain\"}\n"
        );
    }

    #[test]
    fn types_are_checked_against_the_known_ones() {
        assert_eq!(parse_type("payment_received").unwrap(), "PAYMENT_RECEIVED");
        let nope = parse_type("NOPE").unwrap_err();
        assert!(
            nope.starts_with("`NOPE` is not an event type; expected one of PATIENT_CREATED"),
            "{nope}"
        );
    }
}
