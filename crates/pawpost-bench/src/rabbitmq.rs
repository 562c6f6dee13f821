//! The durable broker peer that syncs before it acknowledges: RabbitMQ quorum queues
//! with publisher confirms, under the same fan-out as Mosquitto and JetStream (one
//! subscriber per toy, each on its own connection consuming a queue of its own; one
//! publisher at the offered rate; the same payload size). A quorum queue confirms a
//! persistent message only once its Raft log entry has been fsynced, so the confirm
//! plays the part of pawpost's 201. The broker is a running one (it is not started by
//! the bench): `amqp://guest:guest@127.0.0.1:5672/%2f`, or `PAWPOST_BENCH_AMQP_URL`.
//! Every run declares its own freshly named queues and deletes them at the end.
use crate::mqtt::MqttRun;
use crate::stats::{round2, summary};
use amqprs::callbacks::ChannelCallback;
use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicPublishArguments, BasicQosArguments, Channel,
    ConfirmSelectArguments, QueueDeclareArguments, QueueDeleteArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::error::Error as AmqpError;
use amqprs::{
    Ack, BasicProperties, Cancel, CloseChannel, FieldTable, FieldValue, Nack, Return,
    DELIVERY_MODE_PERSISTENT,
};
use async_trait::async_trait;
use eyre::{bail, eyre, Result};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The environment variable that names the broker.
pub const URL_VAR: &str = "PAWPOST_BENCH_AMQP_URL";
/// The broker when `URL_VAR` is not set: the local RabbitMQ's default user and vhost.
const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// AMQP's port when the URL names none.
const DEFAULT_PORT: u16 = 5672;
/// How long opening one connection may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// How long one request to the broker may take (declare, delete, qos, consume, close).
const CALL_LIMIT: Duration = Duration::from_secs(10);
/// How long handing one message to the client's writer may take.
const PUBLISH_LIMIT: Duration = Duration::from_secs(5);
/// How long confirms still missing may take after the deliveries' drain.
const CONFIRM_LIMIT: Duration = Duration::from_secs(5);
/// Unacknowledged deliveries a subscriber may hold at once (`basic.qos`).
const PREFETCH: u16 = 16;
/// Each subscriber has a connection (and a channel) of its own.
const SUBSCRIBERS_PER_CONNECTION: u64 = 1;
/// Queues are named `<QUEUE_PREFIX>-<pid>-<run>-<i>`.
const QUEUE_PREFIX: &str = "pawpost-bench";
/// The message's index, big-endian, opens its payload.
const INDEX_BYTES: usize = 8;
/// Every payload byte after the index.
const FILL: u8 = 0x4f;

/// Where the broker is, from `URL_VAR` or `DEFAULT_URL`.
#[derive(Debug, PartialEq)]
struct Target {
    host: String,
    port: u16,
    user: String,
    password: String,
    vhost: String,
}

impl Target {
    fn from_env() -> Result<Self> {
        match std::env::var(URL_VAR) {
            Ok(url) => Self::parse(&url),
            Err(std::env::VarError::NotPresent) => Self::parse(DEFAULT_URL),
            Err(e) => bail!(
                "{URL_VAR} is not usable ({e}); set it to amqp://USER:PASSWORD@HOST:PORT/VHOST"
            ),
        }
    }

    /// `amqp://[USER[:PASSWORD]@]HOST[:PORT][/VHOST]`, percent-encoded as in RabbitMQ's
    /// URI spec; a missing or empty vhost is `/`.
    fn parse(url: &str) -> Result<Self> {
        let usage = "write it as amqp://USER:PASSWORD@HOST:PORT/VHOST (the vhost `/` is %2f)";
        let Some(rest) = url.strip_prefix("amqp://") else {
            bail!("{URL_VAR} must start with amqp:// (the bench speaks plain AMQP 0-9-1); {usage}");
        };
        let (authority, vhost) = rest.split_once('/').unwrap_or((rest, ""));
        let vhost = if vhost.is_empty() {
            "/".to_owned()
        } else {
            decode(vhost)?
        };
        let (user, password, hostport) = match authority.rsplit_once('@') {
            Some((info, hostport)) => {
                let (user, password) = info.split_once(':').unwrap_or((info, ""));
                (decode(user)?, decode(password)?, hostport)
            }
            None => ("guest".to_owned(), "guest".to_owned(), authority),
        };
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                bail!("{URL_VAR}: an IPv6 host needs its closing `]`; {usage}");
            };
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            bail!("{URL_VAR} names no host; {usage}");
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| {
                eyre!("{URL_VAR}: port `{p}` is not a number from 1 to 65535; {usage}")
            })?,
            None => DEFAULT_PORT,
        };
        Ok(Self {
            host: decode(host)?,
            port,
            user,
            password,
            vhost,
        })
    }

    /// The URL without the password, for messages and the result.
    fn shown(&self) -> String {
        let vhost = self.vhost.replace('%', "%25").replace('/', "%2f");
        format!("amqp://{}@{}:{}/{vhost}", self.user, self.host, self.port)
    }

    async fn connect(&self, name: &str) -> Result<Connection> {
        let args = OpenConnectionArguments::new(&self.host, self.port, &self.user, &self.password)
            .virtual_host(&self.vhost)
            .connection_name(name)
            .finish();
        let fix = format!(
            "start RabbitMQ (`systemctl start rabbitmq-server`, or `apt-get install rabbitmq-server`) or set {URL_VAR} to a running broker (amqp://USER:PASSWORD@HOST:PORT/VHOST)"
        );
        match tokio::time::timeout(CONNECT_LIMIT, Connection::open(&args)).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(eyre!(
                "RabbitMQ at {} refused or is unreachable ({e}): {fix}",
                self.shown()
            )),
            Err(_) => Err(eyre!(
                "RabbitMQ at {} did not open a connection within {} s: {fix}",
                self.shown(),
                CONNECT_LIMIT.as_secs()
            )),
        }
    }
}

/// Percent-decoding of one URL part.
fn decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    eyre!("{URL_VAR}: `{s}` has a `%` not followed by two hex digits; write `%25` for a `%`")
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| eyre!("{URL_VAR}: `{s}` decodes to bytes that are not UTF-8"))
}

/// A broker request bounded by `limit`, its error saying what was being done.
async fn within<T>(
    limit: Duration,
    what: &str,
    request: impl Future<Output = std::result::Result<T, AmqpError>>,
) -> Result<T> {
    match tokio::time::timeout(limit, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(eyre!("RabbitMQ: {what} failed: {e}")),
        Err(_) => Err(eyre!(
            "RabbitMQ: {what} took more than {} s; see `rabbitmqctl status` (a disk or memory alarm blocks publishers)",
            limit.as_secs()
        )),
    }
}

/// One publisher confirm (or nack), as the client's dispatcher received it.
struct Confirm {
    tag: u64,
    multiple: bool,
    ack: bool,
    at: Instant,
}

/// The publisher channel's callback: confirms go to the measuring task with their time.
struct Confirms(mpsc::UnboundedSender<Confirm>);

#[async_trait]
impl ChannelCallback for Confirms {
    async fn close(
        &mut self,
        _channel: &Channel,
        close: CloseChannel,
    ) -> std::result::Result<(), AmqpError> {
        eprintln!("rabbitmq: the broker closed the publisher's channel: {close}");
        Ok(())
    }

    async fn cancel(
        &mut self,
        _channel: &Channel,
        _cancel: Cancel,
    ) -> std::result::Result<(), AmqpError> {
        Ok(())
    }

    async fn flow(
        &mut self,
        _channel: &Channel,
        _active: bool,
    ) -> std::result::Result<bool, AmqpError> {
        Ok(true)
    }

    async fn publish_ack(&mut self, _channel: &Channel, ack: Ack) {
        let _ = self.0.send(Confirm {
            tag: ack.delivery_tag(),
            multiple: ack.mutiple(),
            ack: true,
            at: Instant::now(),
        });
    }

    async fn publish_nack(&mut self, _channel: &Channel, nack: Nack) {
        let _ = self.0.send(Confirm {
            tag: nack.delivery_tag(),
            multiple: nack.multiple(),
            ack: false,
            at: Instant::now(),
        });
    }

    async fn publish_return(
        &mut self,
        _channel: &Channel,
        _ret: Return,
        _properties: BasicProperties,
        _content: Vec<u8>,
    ) {
    }
}

/// Publishes still waiting for their confirm (by delivery tag: the channel's n-th
/// publish has tag n), and what the confirms said so far.
#[derive(Default)]
struct Outstanding {
    waiting: BTreeMap<u64, Instant>,
    acked: Vec<Duration>,
    nacked: u64,
}

impl Outstanding {
    fn settle(&mut self, c: &Confirm) {
        let settled: Vec<Instant> = if c.multiple {
            let later = self.waiting.split_off(&c.tag.saturating_add(1));
            std::mem::replace(&mut self.waiting, later)
                .into_values()
                .collect()
        } else {
            self.waiting.remove(&c.tag).into_iter().collect()
        };
        for start in settled {
            if c.ack {
                self.acked.push(c.at.saturating_duration_since(start));
            } else {
                self.nacked += 1;
            }
        }
    }
}

/// One run per offered rate, each on its own fresh queues, against the broker named by
/// `PAWPOST_BENCH_AMQP_URL` (or the local default).
pub async fn delivery_rates(runs: &[MqttRun]) -> Result<Value> {
    let target = Target::from_env()?;
    let admin = target.connect("pawpost-bench-admin").await?;
    let properties = admin.server_properties();
    let known = |s: &str| {
        if s.is_empty() {
            "unknown".to_owned()
        } else {
            s.to_owned()
        }
    };
    let (product, version) = (known(properties.product()), known(properties.version()));
    let mut results = Vec::new();
    let mut failure = None;
    for (n, run) in runs.iter().enumerate() {
        eprintln!(
            "rabbitmq: {}/s for {} s ...",
            run.rate,
            run.duration.as_secs()
        );
        match delivery(&target, &admin, n, run).await {
            Ok(r) => results.push(r),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let _ = tokio::time::timeout(CALL_LIMIT, admin.close()).await;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(json!({
        "server": version,
        "product": product,
        "broker": target.shown(),
        "queue_type": "quorum",
        "durable": true,
        "delivery_mode": DELIVERY_MODE_PERSISTENT,
        "publisher_confirms": true,
        "synced_before_ack": true,
        "subscribers_per_connection": SUBSCRIBERS_PER_CONNECTION,
        "prefetch": PREFETCH,
        "runs": results,
    }))
}

/// Declares the run's queues, measures, and deletes the queues it declared, also when
/// declaring or measuring failed.
async fn delivery(
    target: &Target,
    admin: &Connection,
    run: usize,
    args: &MqttRun,
) -> Result<Value> {
    if args.payload_bytes < INDEX_BYTES {
        bail!(
            "the payload must hold the message index: give --envelope-bytes {INDEX_BYTES} or more"
        );
    }
    if args.subscribers == 0 {
        bail!("no queue to publish to: give --toys 1 or more");
    }
    let pid = std::process::id();
    let names: Vec<String> = (0..args.subscribers)
        .map(|i| format!("{QUEUE_PREFIX}-{pid}-{run}-{i}"))
        .collect();
    let channel = within(
        CALL_LIMIT,
        "opening the admin channel",
        admin.open_channel(None),
    )
    .await?;
    let mut quorum = FieldTable::new();
    quorum.insert(
        "x-queue-type"
            .try_into()
            .map_err(|_| eyre!("the argument name x-queue-type does not fit a short string"))?,
        FieldValue::from("quorum"),
    );
    let mut declared = 0;
    let mut outcome = Ok(Value::Null);
    for name in &names {
        let declare = QueueDeclareArguments::durable_client_named(name)
            .arguments(quorum.clone())
            .finish();
        if let Err(e) = within(
            CALL_LIMIT,
            &format!("declaring quorum queue {name}"),
            channel.queue_declare(declare),
        )
        .await
        {
            outcome = Err(e);
            break;
        }
        declared += 1;
    }
    if outcome.is_ok() {
        outcome = measure(target, &names, args).await;
    }
    let deleted = delete(admin, channel, &names[..declared]).await;
    let mut result = outcome?;
    result["queues_deleted"] = json!(deleted);
    Ok(result)
}

/// Deletes `names` (best effort, each bounded); a failure opens a fresh channel for the
/// rest, since the broker closes a channel on an error. Returns how many went.
async fn delete(admin: &Connection, channel: Channel, names: &[String]) -> usize {
    let mut channel = Some(channel);
    let mut deleted = 0;
    for name in names {
        if channel.is_none() {
            channel = within(
                CALL_LIMIT,
                "reopening the admin channel",
                admin.open_channel(None),
            )
            .await
            .ok();
        }
        let Some(ch) = &channel else {
            continue;
        };
        match within(
            CALL_LIMIT,
            &format!("deleting queue {name}"),
            ch.queue_delete(QueueDeleteArguments::new(name)),
        )
        .await
        {
            Ok(_) => deleted += 1,
            Err(e) => {
                eprintln!("rabbitmq: {e}; delete it with `rabbitmqctl delete_queue {name}`");
                channel = None;
            }
        }
    }
    if let Some(ch) = channel {
        let _ = tokio::time::timeout(CALL_LIMIT, ch.close()).await;
    }
    deleted
}

/// A subscriber's connection and the task that consumes its queue.
type Subscriber = (Connection, JoinHandle<()>);

/// Subscribers and the publisher are set up, measured, and closed, also on an error.
async fn measure(target: &Target, names: &[String], args: &MqttRun) -> Result<Value> {
    let mut subscribers: Vec<Subscriber> = Vec::with_capacity(names.len());
    let mut publisher = None;
    let outcome = measure_with(target, names, args, &mut subscribers, &mut publisher).await;
    for (connection, task) in subscribers {
        task.abort();
        let _ = tokio::time::timeout(CALL_LIMIT, connection.close()).await;
    }
    if let Some(connection) = publisher {
        let _ = tokio::time::timeout(CALL_LIMIT, connection.close()).await;
    }
    outcome
}

/// Subscriber `i` consumes queue `i` on a connection of its own (manual acknowledgement,
/// prefetch `PREFETCH`); one publisher in confirm mode sends persistent message `k` to
/// queue `k mod queues` through the default exchange at the offered rate, without waiting
/// for confirms, and collects them on the side. Latency: publish call to the subscriber's
/// receipt; confirm latency: publish call to the confirm.
async fn measure_with(
    target: &Target,
    names: &[String],
    args: &MqttRun,
    subscribers: &mut Vec<Subscriber>,
    publisher: &mut Option<Connection>,
) -> Result<Value> {
    let count = crate::stats::offered(args.rate, args.duration);
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    for (i, name) in names.iter().enumerate() {
        let connection = target
            .connect(&format!("{QUEUE_PREFIX}-subscriber-{i}"))
            .await?;
        let channel = within(
            CALL_LIMIT,
            "opening a subscriber's channel",
            connection.open_channel(None),
        )
        .await;
        let channel = match channel {
            Ok(channel) => channel,
            Err(e) => {
                let _ = tokio::time::timeout(CALL_LIMIT, connection.close()).await;
                return Err(e);
            }
        };
        let consume = async {
            within(
                CALL_LIMIT,
                "setting a subscriber's prefetch",
                channel.basic_qos(BasicQosArguments::new(0, PREFETCH, false)),
            )
            .await?;
            let consume = BasicConsumeArguments::new(name, &format!("sub-{i}"))
                .manual_ack(true)
                .finish();
            within(
                CALL_LIMIT,
                &format!("consuming {name}"),
                channel.basic_consume_rx(consume),
            )
            .await
        }
        .await;
        let mut deliveries = match consume {
            Ok((_, deliveries)) => deliveries,
            Err(e) => {
                let _ = tokio::time::timeout(CALL_LIMIT, connection.close()).await;
                return Err(e);
            }
        };
        let tx = tx.clone();
        let task = tokio::spawn(async move {
            // At most every message of the run comes to one subscriber.
            for _ in 0..count {
                let Some(message) = deliveries.recv().await else {
                    break;
                };
                let at = Instant::now();
                if let Some(index) = message
                    .content
                    .as_deref()
                    .and_then(|c| c.get(..INDEX_BYTES))
                    .and_then(|c| <[u8; INDEX_BYTES]>::try_from(c).ok())
                {
                    let _ = tx.send((u64::from_be_bytes(index), at));
                }
                if let Some(deliver) = message.deliver {
                    let _ = channel
                        .basic_ack(BasicAckArguments::new(deliver.delivery_tag(), false))
                        .await;
                }
            }
        });
        subscribers.push((connection, task));
    }
    let connection = target.connect(&format!("{QUEUE_PREFIX}-publisher")).await?;
    let channel = within(
        CALL_LIMIT,
        "opening the publisher's channel",
        connection.open_channel(None),
    )
    .await;
    *publisher = Some(connection);
    let channel = channel?;
    let (confirm_tx, mut confirms) = mpsc::unbounded_channel::<Confirm>();
    within(
        CALL_LIMIT,
        "registering the confirm callback",
        channel.register_callback(Confirms(confirm_tx)),
    )
    .await?;
    within(
        CALL_LIMIT,
        "turning on publisher confirms",
        channel.confirm_select(ConfirmSelectArguments::new(false)),
    )
    .await?;
    let properties = BasicProperties::default()
        .with_delivery_mode(DELIVERY_MODE_PERSISTENT)
        .finish();
    let queues = u64::try_from(names.len())?;
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut starts: HashMap<u64, Instant> = HashMap::with_capacity(usize::try_from(count)?);
    let mut outstanding = Outstanding::default();
    let t0 = Instant::now();
    for k in 0..count {
        tokio::time::sleep_until((t0 + interval * u32::try_from(k)?).into()).await;
        let mut payload = vec![FILL; args.payload_bytes];
        payload[..INDEX_BYTES].copy_from_slice(&k.to_be_bytes());
        let queue = &names[usize::try_from(k % queues)?];
        let start = Instant::now();
        within(
            PUBLISH_LIMIT,
            "publishing",
            channel.basic_publish(
                properties.clone(),
                payload,
                BasicPublishArguments::new("", queue),
            ),
        )
        .await?;
        starts.insert(k, start);
        outstanding.waiting.insert(k + 1, start);
    }
    let offer_ended = t0.elapsed();
    let (mut latencies, last) =
        crate::stats::drain_arrivals(&mut rx, &mut starts, count, Instant::now() + args.drain, t0)
            .await?;
    let confirm_deadline = Instant::now() + CONFIRM_LIMIT;
    while !outstanding.waiting.is_empty() {
        let left = confirm_deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, confirms.recv()).await {
            Ok(Some(confirm)) => outstanding.settle(&confirm),
            _ => break,
        }
    }
    let _ = tokio::time::timeout(CALL_LIMIT, channel.close()).await;
    let delivered = latencies.len();
    Ok(json!({
        "offered_per_s": args.rate,
        "seconds": args.duration.as_secs_f64(),
        "payload_bytes": args.payload_bytes,
        "subscribers": args.subscribers,
        "queues": names.len(),
        "offered": count,
        "publish_acks": outstanding.acked.len(),
        "publish_nacks": outstanding.nacked,
        "unconfirmed": outstanding.waiting.len(),
        "delivered": delivered,
        "delivered_per_s": round2(delivered as f64 / last.duration_since(t0).max(offer_ended).as_secs_f64()),
        "end_to_end_latency": summary(&mut latencies),
        "confirm_latency": summary(&mut outstanding.acked),
    }))
}

#[cfg(test)]
mod tests {
    use super::{Confirm, Outstanding, Target};
    use std::time::{Duration, Instant};

    #[test]
    fn the_default_url_is_the_local_broker() {
        let t = Target::parse(super::DEFAULT_URL).expect("parses");
        assert_eq!(
            t,
            Target {
                host: "127.0.0.1".into(),
                port: 5672,
                user: "guest".into(),
                password: "guest".into(),
                vhost: "/".into(),
            }
        );
        assert_eq!(t.shown(), "amqp://guest@127.0.0.1:5672/%2f");
    }

    #[test]
    fn urls_decode_and_default() {
        let t = Target::parse("amqp://a%40b:p%3Aw@[::1]:5673/shop").expect("parses");
        assert_eq!((t.user.as_str(), t.password.as_str()), ("a@b", "p:w"));
        assert_eq!(
            (t.host.as_str(), t.port, t.vhost.as_str()),
            ("::1", 5673, "shop")
        );
        let t = Target::parse("amqp://broker").expect("parses");
        assert_eq!(
            (t.host.as_str(), t.port, t.vhost.as_str()),
            ("broker", 5672, "/")
        );
        assert!(Target::parse("amqps://broker").is_err());
        assert!(Target::parse("amqp://broker:port").is_err());
        assert!(Target::parse("amqp://broker/%zz").is_err());
    }

    #[test]
    fn multiple_confirms_settle_every_earlier_tag() {
        let t0 = Instant::now();
        let mut o = Outstanding::default();
        for tag in 1..=4 {
            o.waiting.insert(tag, t0);
        }
        let at = t0 + Duration::from_millis(3);
        o.settle(&Confirm {
            tag: 3,
            multiple: true,
            ack: true,
            at,
        });
        assert_eq!(o.acked.len(), 3);
        o.settle(&Confirm {
            tag: 4,
            multiple: false,
            ack: false,
            at,
        });
        assert_eq!((o.nacked, o.waiting.len()), (1, 0));
    }
}
