//! `pawpost toy`: the simulated toy driven by lines of text.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use eyre::WrapErr;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::broadcast;

use crate::shell::identity_lines;
use crate::{read_recording, SimConfig, SimEvent, SimStatus, SimToy};

/// Longest `wait`, so that a typo cannot hang a script for hours.
const MAX_WAIT: Duration = Duration::from_secs(600);
/// Longest `hold`: past the factory reset's 10 s, a longer hold does nothing more.
const MAX_HOLD: Duration = Duration::from_secs(60);

const HELP: &str = "\
commands:
  press             short paw press: confirm a pairing when the toy speaks the number
                    the app shows; else play the oldest message, or else start recording
  long-press        long paw press: start pairing (a toy without a family)
  hold SECONDS      hold the paw that long (simulated, no waiting): 10 or more is a
                    factory reset (new keys, no family, no messages; pair it again);
                    less is a long press
  record FILE.ogg   press the paw and record FILE.ogg (Ogg Opus, at most 30 s)
  status            device id, fingerprint, household, queue, heart, connection
  wait SECONDS      only show what the toy does, for that long (for scripts)
  help              this list
  quit              switch the toy off";

/// One line of input.
#[derive(Clone, Debug, PartialEq)]
pub enum CliCommand {
    /// `press`
    Press,
    /// `long-press`
    LongPress,
    /// `hold SECONDS`
    Hold(Duration),
    /// `record FILE.ogg`
    Record(PathBuf),
    /// `status`
    Status,
    /// `wait SECONDS`
    Wait(Duration),
    /// `help`
    Help,
    /// `quit` (or `exit`)
    Quit,
}

/// Parses one input line: `Ok(None)` for a blank line or a `#` comment.
pub fn parse_command(line: &str) -> Result<Option<CliCommand>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (line, ""),
    };
    let no_argument = |command: CliCommand| {
        if rest.is_empty() {
            Ok(Some(command))
        } else {
            Err(format!("{word} takes no argument"))
        }
    };
    match word {
        "press" => no_argument(CliCommand::Press),
        "long-press" => no_argument(CliCommand::LongPress),
        "status" => no_argument(CliCommand::Status),
        "help" | "?" => no_argument(CliCommand::Help),
        "quit" | "exit" => no_argument(CliCommand::Quit),
        "record" if rest.is_empty() => Err("record needs a file: record FILE.ogg".into()),
        "record" => Ok(Some(CliCommand::Record(PathBuf::from(rest)))),
        "hold" => {
            let seconds: f64 = rest.parse().map_err(|_| {
                format!("hold needs seconds, e.g. hold 10 for a factory reset (got {rest:?})")
            })?;
            if !(0.0..=MAX_HOLD.as_secs_f64()).contains(&seconds) {
                return Err(format!("hold takes 0 to {} seconds", MAX_HOLD.as_secs()));
            }
            Ok(Some(CliCommand::Hold(Duration::from_secs_f64(seconds))))
        }
        "wait" => {
            let seconds: f64 = rest
                .parse()
                .map_err(|_| format!("wait needs seconds, e.g. wait 2 (got {rest:?})"))?;
            if !(0.0..=MAX_WAIT.as_secs_f64()).contains(&seconds) {
                return Err(format!("wait takes 0 to {} seconds", MAX_WAIT.as_secs()));
            }
            Ok(Some(CliCommand::Wait(Duration::from_secs_f64(seconds))))
        }
        other => Err(format!("unknown command {other:?}; try help")),
    }
}

/// Runs a toy and drives it from `input`, one command per line, until `quit` or the end of
/// the input; prints one line to `output` for each thing the toy says or does.
pub async fn run_cli(
    config: SimConfig,
    input: impl AsyncBufRead + Unpin,
    output: impl Write,
) -> eyre::Result<()> {
    run_cli_on(config, false, input, output).await
}

/// As [`run_cli`]; with `channel`, the toy speaks toy protocol version 3, every frame inside
/// the encrypted channel ([`SimToy::start_on_channel`]).
pub async fn run_cli_on(
    config: SimConfig,
    channel: bool,
    input: impl AsyncBufRead + Unpin,
    mut output: impl Write,
) -> eyre::Result<()> {
    let state_dir = config.state_dir.clone();
    let toy = if channel {
        SimToy::start_on_channel(config).await?
    } else {
        SimToy::start(config).await?
    };
    let mut events = toy.events();
    let status = toy.status();
    for line in identity_lines(&status, &state_dir) {
        say(&mut output, &line)?;
    }
    say(&mut output, &format!("server: {}", status.ws_url))?;
    say(&mut output, "type help for commands")?;

    let mut lines = input.lines();
    loop {
        let line = tokio::select! {
            // What the toy already did is shown before the next command runs.
            biased;
            event = events.recv() => {
                show_received(&mut output, event)?;
                continue;
            }
            line = lines.next_line() => line.wrap_err("cannot read commands")?,
        };
        let Some(line) = line else { break };
        match parse_command(&line) {
            Ok(None) => {}
            Ok(Some(CliCommand::Quit)) => break,
            Ok(Some(command)) => run_command(&toy, command, &mut events, &mut output).await?,
            Err(message) => say(&mut output, &message)?,
        }
    }

    // Everything asked for is carried out before the toy stops, and shown.
    toy.stop().await;
    loop {
        match events.try_recv() {
            Ok(event) => show(&mut output, &event)?,
            Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    say(&mut output, "toy switched off")?;
    Ok(())
}

async fn run_command(
    toy: &SimToy,
    command: CliCommand,
    events: &mut broadcast::Receiver<SimEvent>,
    output: &mut impl Write,
) -> eyre::Result<()> {
    match command {
        CliCommand::Press => toy.press(),
        CliCommand::LongPress => toy.long_press(),
        CliCommand::Hold(duration) => toy.hold(duration),
        CliCommand::Record(path) => match read_recording(&path).await {
            Ok(ogg) => toy.record(ogg),
            Err(e) => say(output, &format!("{e:#}"))?,
        },
        CliCommand::Status => {
            for line in status_lines(&toy.status()) {
                say(output, &line)?;
            }
        }
        CliCommand::Wait(duration) => {
            let deadline = tokio::time::Instant::now() + duration;
            while let Ok(event) = tokio::time::timeout_at(deadline, events.recv()).await {
                show_received(output, event)?;
            }
        }
        CliCommand::Help => say(output, HELP)?,
        // Handled by the loop, which owns the toy.
        CliCommand::Quit => {}
    }
    Ok(())
}

fn show_received(
    output: &mut impl Write,
    event: Result<SimEvent, broadcast::error::RecvError>,
) -> eyre::Result<()> {
    match event {
        Ok(event) => show(output, &event),
        Err(broadcast::error::RecvError::Lagged(n)) => {
            say(output, &format!("({n} toy events not shown)"))
        }
        // The toy's task ended; `run_cli` still holds the sender, so this does not happen
        // before quitting.
        Err(broadcast::error::RecvError::Closed) => Ok(()),
    }
}

/// The line printed for an event.
pub(crate) fn event_line(event: &SimEvent) -> String {
    match event {
        SimEvent::Connected => "connected".into(),
        SimEvent::Disconnected => "disconnected".into(),
        SimEvent::Spoke { text } => format!("toy says: {text}"),
        SimEvent::PairingCode { code } => format!("pairing code: {code} (type it in the app)"),
        SimEvent::ConfirmPairing { number } => {
            format!("confirm pairing: {number} (press if the app shows it)")
        }
        SimEvent::Paired { household_id } => format!("paired with household {household_id}"),
        SimEvent::Heart { state } => format!("heart: {state}"),
        SimEvent::Played {
            message_id,
            ogg_path,
        } => format!("played message {message_id} -> {}", ogg_path.display()),
        SimEvent::RecordingStarted => "recording (microphone on)".into(),
        SimEvent::Uploaded { message_id } => format!("server has recording {message_id}"),
        SimEvent::Waiting { wait, refused, .. } => format!(
            "waiting: {}; trying again in {}",
            if *refused {
                "The server refused me"
            } else {
                "I can't reach the server"
            },
            spoken_duration(*wait)
        ),
        SimEvent::Report { text } => format!("report: {text}"),
    }
}

/// A wait as a person says it: seconds under two minutes, else minutes.
fn spoken_duration(wait: Duration) -> String {
    let seconds = wait.as_secs_f64().round().max(1.0);
    if seconds < 120.0 {
        let n = seconds.to_string();
        if n == "1" {
            "1 second".into()
        } else {
            format!("{n} seconds")
        }
    } else {
        format!("{} minutes", (seconds / 60.0).round())
    }
}

fn status_lines(status: &SimStatus) -> Vec<String> {
    vec![
        format!("device id: {}", status.device_id),
        format!("fingerprint: {}", status.fingerprint),
        format!(
            "household: {}",
            status
                .household_id
                .map_or_else(|| "none (not paired)".into(), |h| h.to_string())
        ),
        format!("roster version: {}", status.roster_version),
        format!("queued messages: {}", status.queued),
        format!("heart: {}", status.heart),
        format!(
            "connection: {} ({})",
            if status.connected { "up" } else { "down" },
            status.ws_url
        ),
    ]
}

fn show(output: &mut impl Write, event: &SimEvent) -> eyre::Result<()> {
    say(output, &event_line(event))
}

fn say(output: &mut impl Write, line: &str) -> eyre::Result<()> {
    writeln!(output, "{line}").wrap_err("cannot write output")?;
    output.flush().wrap_err("cannot write output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse_command("press"), Ok(Some(CliCommand::Press)));
        assert_eq!(
            parse_command("  long-press "),
            Ok(Some(CliCommand::LongPress))
        );
        assert_eq!(
            parse_command("record my voice.ogg"),
            Ok(Some(CliCommand::Record(PathBuf::from("my voice.ogg"))))
        );
        assert_eq!(parse_command("status"), Ok(Some(CliCommand::Status)));
        assert_eq!(
            parse_command("hold 10"),
            Ok(Some(CliCommand::Hold(Duration::from_secs(10))))
        );
        assert_eq!(parse_command("help"), Ok(Some(CliCommand::Help)));
        assert_eq!(parse_command("quit"), Ok(Some(CliCommand::Quit)));
        assert_eq!(parse_command("exit"), Ok(Some(CliCommand::Quit)));
        assert_eq!(
            parse_command("wait 0.5"),
            Ok(Some(CliCommand::Wait(Duration::from_millis(500))))
        );
        assert_eq!(parse_command(""), Ok(None));
        assert_eq!(parse_command("# a comment"), Ok(None));
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        assert!(parse_command("record")
            .unwrap_err()
            .contains("record FILE.ogg"));
        assert!(parse_command("press hard")
            .unwrap_err()
            .contains("no argument"));
        assert!(parse_command("wait soon").unwrap_err().contains("seconds"));
        assert!(parse_command("wait -1").is_err());
        assert!(parse_command("wait 100000").is_err());
        assert!(parse_command("wait NaN").is_err());
        assert!(parse_command("hold").unwrap_err().contains("factory reset"));
        assert!(parse_command("hold 61").is_err());
        assert!(parse_command("hold -2").is_err());
        assert!(parse_command("dance").unwrap_err().contains("try help"));
    }

    #[test]
    fn events_print_as_one_line_each() {
        let id = uuid::Uuid::nil();
        assert_eq!(
            event_line(&SimEvent::Spoke {
                text: "4 8 1 9 0 2".into()
            }),
            "toy says: 4 8 1 9 0 2"
        );
        assert_eq!(
            event_line(&SimEvent::Played {
                message_id: id,
                ogg_path: PathBuf::from("/s/played/x.ogg")
            }),
            format!("played message {id} -> /s/played/x.ogg")
        );
        assert!(HELP.contains("hold SECONDS"));
        assert_eq!(
            event_line(&SimEvent::Waiting {
                attempt: 6,
                wait: Duration::from_millis(40_400),
                refused: true
            }),
            "waiting: The server refused me; trying again in 40 seconds"
        );
        assert_eq!(
            event_line(&SimEvent::Waiting {
                attempt: 1,
                wait: Duration::from_millis(700),
                refused: false
            }),
            "waiting: I can't reach the server; trying again in 1 second"
        );
        assert_eq!(
            event_line(&SimEvent::Waiting {
                attempt: 12,
                wait: Duration::from_secs(200),
                refused: true
            }),
            "waiting: The server refused me; trying again in 3 minutes"
        );
    }
}
