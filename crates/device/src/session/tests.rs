//! The session's rules, as plain function calls: events in, actions out.

use std::time::Duration;

use rollcall_protocol::envelope::{Command, Request, Response};
use rollcall_protocol::ids::Secret;
use rollcall_protocol::params::{self, SignInParam};
use rollcall_protocol::time::{Timestamp, platform_time_in_detail};
use rollcall_protocol::{ApiCode, ErrorCode, Packet, ProtocolError};

use super::*;
use crate::backoff::Rng;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const NOW: i64 = 1_750_000_000_000;

fn config() -> SessionConfig {
    let mut c = SessionConfig::new("SN-1", "id-1", Secret::new("key-1"), Secret::new(SECRET));
    c.window = 4;
    c.load_batch = 8;
    c
}

fn record(id: i64) -> QueuedRecord {
    QueuedRecord {
        id,
        param: SignInParam {
            person_id: format!("p{id}"),
            r#type: 1,
            bit_type: None,
            qr_code_info: None,
            img: None,
            record_time: NOW - 1000 + id,
            temperature: None,
            iris_info: None,
            coordinate: None,
        },
        photo: None,
    }
}

fn pkt(p: Packet) -> Event {
    Event::Packet(Box::new(p))
}

/// The platform's signed answer to a request packet.
fn answer(req: &Packet, outcome: Result<Option<String>, ProtocolError>) -> Packet {
    let r = Request::from_packet(req.clone());
    let mut resp = Response::to(&r, outcome);
    resp.sign_with(req.apicode.parse().unwrap(), SECRET);
    resp.to_packet()
}

fn sent(actions: &[Action]) -> Vec<Packet> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some((**p).clone()),
            _ => None,
        })
        .collect()
}

fn sign_in_ids(packets: &[Packet]) -> Vec<String> {
    packets
        .iter()
        .filter(|p| p.apicode == "C_SIGN_IN")
        .map(|p| params::parse::<SignInParam>(&p.param).unwrap().person_id)
        .collect()
}

/// A session that is connected, authenticated and has loaded `n` records.
fn ready_with(n: i64) -> (Session, Vec<Action>) {
    ready_loaded(config(), (1..=n).map(record).collect())
}

/// A session with `cfg` that is connected, authenticated and has loaded `records`.
fn ready_loaded(cfg: SessionConfig, records: Vec<QueuedRecord>) -> (Session, Vec<Action>) {
    let mut s = Session::new(cfg, Rng::seeded(1));
    let a = s.handle(NOW, Event::Start);
    assert!(matches!(a.last(), Some(Action::Connect)));
    let a = s.handle(NOW, Event::Connected);
    let auth = sent(&a).pop().unwrap();
    assert_eq!(auth.apicode, "C_AUTH");
    assert_eq!(auth.access_id, "id-1");
    assert!(
        Request::from_packet(auth.clone())
            .check(
                rollcall_protocol::envelope::Transport::Tcp,
                Timestamp::from_epoch_ms(NOW),
                300
            )
            .is_ok()
    );
    let a = s.handle(
        NOW,
        pkt(answer(&auth, Ok(Some(r#"{"token":"tok"}"#.into())))),
    );
    assert_eq!(s.state(), SessionState::Ready);
    assert!(a.iter().any(|x| matches!(x, Action::Token(_))));
    assert!(sent(&a).iter().any(|p| p.apicode == "C_HEARTBEAT"));
    let (after, limit) = a
        .iter()
        .find_map(|x| match x {
            Action::LoadRecords { after, limit } => Some((*after, *limit)),
            _ => None,
        })
        .expect("asks the store for records");
    assert_eq!((after, limit), (0, 8));
    let a = s.handle(NOW, Event::RecordsLoaded(records));
    (s, a)
}

#[test]
fn photo_bytes_in_flight_are_bounded_but_one_record_always_goes() {
    let mut cfg = config();
    cfg.window_bytes = 2_500;
    let with_photo = |id: i64, len: usize| QueuedRecord {
        photo: Some(vec![0xff; len]),
        ..record(id)
    };
    let records = vec![
        with_photo(1, 1_000),
        with_photo(2, 1_000),
        with_photo(3, 1_000),
        record(4),
    ];
    let (mut s, a) = ready_loaded(cfg.clone(), records);
    let out = sent(&a);
    // 2,000 bytes in flight; a third photo would make 3,000 > 2,500.
    assert_eq!(sign_in_ids(&out), ["p1", "p2"]);
    let a = s.handle(
        NOW,
        pkt(answer(
            &out[0],
            Ok(Some(r#"{"recordId":"9","duplicate":false}"#.into())),
        )),
    );
    // One answered frees its bytes: the third goes, and the photo-less fourth fits too.
    assert_eq!(sign_in_ids(&sent(&a)), ["p3", "p4"]);

    // A photo larger than the whole budget still goes when nothing else is in flight.
    let (_, a) = ready_loaded(cfg, vec![with_photo(1, 10_000), with_photo(2, 10)]);
    assert_eq!(sign_in_ids(&sent(&a)), ["p1"]);
}

#[test]
fn a_window_of_sign_ins_is_pipelined_in_queue_order() {
    let (mut s, a) = ready_with(6);
    let out = sent(&a);
    // Four in flight before any answer: not stop-and-wait.
    assert_eq!(sign_in_ids(&out), ["p1", "p2", "p3", "p4"]);
    let seqs: Vec<u64> = out.iter().map(|p| p.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "distinct, rising seqs"
    );
    assert_eq!(s.in_flight(), 4);
    // Answer the first: acked, and the fifth goes out.
    let a = s.handle(
        NOW,
        pkt(answer(
            &out[0],
            Ok(Some(r#"{"recordId":"99","duplicate":false}"#.into())),
        )),
    );
    let acked: Vec<&Acked> = a
        .iter()
        .filter_map(|x| match x {
            Action::Ack(k) => Some(k),
            _ => None,
        })
        .collect();
    assert_eq!(acked.len(), 1);
    assert_eq!((acked[0].id, acked[0].record_id.as_str()), (1, "99"));
    assert_eq!(sign_in_ids(&sent(&a)), ["p5"]);
}

#[test]
fn in_flight_records_are_handed_back_on_disconnect_and_go_first() {
    let (mut s, a) = ready_with(6);
    let out = sent(&a);
    // p1 is acknowledged; the connection drops with p2..p4 in flight.
    s.handle(
        NOW,
        pkt(answer(&out[0], Ok(Some(r#"{"recordId":"1"}"#.into())))),
    );
    let a = s.handle(NOW, Event::Disconnected);
    assert_eq!(s.state(), SessionState::Offline);
    assert_eq!(s.in_flight(), 0);
    assert_eq!(s.pending(), 5, "p2..p6 wait");
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Schedule(Timer::Reconnect, _)))
    );
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::State(SessionState::Offline)))
    );
    // Reconnect, re-authenticate: p2, p3, p4, p5 go out, in that order.
    let a = s.handle(NOW + 1000, Event::Timer(Timer::Reconnect));
    assert!(a.iter().any(|x| matches!(x, Action::Connect)));
    let a = s.handle(NOW + 1000, Event::Connected);
    let auth = sent(&a).pop().unwrap();
    let a = s.handle(
        NOW + 1000,
        pkt(answer(&auth, Ok(Some(r#"{"token":"t2"}"#.into())))),
    );
    let out = sent(&a);
    assert_eq!(sign_in_ids(&out), ["p2", "p3", "p4", "p5"]);
    assert!(
        out.iter()
            .all(|p| p.apicode != "C_SIGN_IN" || p.token == "t2")
    );
}

#[test]
fn reconnect_delays_grow_with_jitter() {
    let mut s = Session::new(config(), Rng::seeded(3));
    s.handle(NOW, Event::Start);
    let mut delays = Vec::new();
    for _ in 0..6 {
        let a = s.handle(NOW, Event::ConnectFailed);
        let d = a
            .iter()
            .find_map(|x| match x {
                Action::Schedule(Timer::Reconnect, d) => Some(*d),
                _ => None,
            })
            .unwrap();
        delays.push(d);
        s.handle(NOW, Event::Timer(Timer::Reconnect));
    }
    assert!(delays[5] > delays[0] * 4, "{delays:?}");
    assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
}

#[test]
fn a_permanent_refusal_dead_letters_one_record_and_the_queue_moves_on() {
    let (mut s, a) = ready_with(5);
    let out = sent(&a);
    let refused = ProtocolError::with_detail(ErrorCode::AttendanceType, "type=3");
    let a = s.handle(NOW, pkt(answer(&out[0], Err(refused))));
    assert!(a.iter().any(
        |x| matches!(x, Action::DeadLetter { id: 1, error } if error.code == ErrorCode::AttendanceType)
    ));
    assert_eq!(sign_in_ids(&sent(&a)), ["p5"], "the next record goes out");
}

#[test]
fn an_unsigned_permanent_error_is_not_trusted() {
    let (mut s, a) = ready_with(5);
    let out = sent(&a);
    let mut forged = answer(&out[0], Err(ErrorCode::ParamInvalid.into()));
    forged.sign.clear();
    let a = s.handle(NOW, pkt(forged));
    assert!(!a.iter().any(|x| matches!(x, Action::DeadLetter { .. })));
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Schedule(Timer::Resume, _)))
    );
}

#[test]
fn a_transient_failure_pauses_then_resends_the_same_record() {
    let (mut s, a) = ready_with(4);
    let out = sent(&a);
    let a = s.handle(NOW, pkt(answer(&out[0], Err(ErrorCode::Internal.into()))));
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Schedule(Timer::Resume, _)))
    );
    assert!(sent(&a).is_empty(), "paused");
    // The rest of the window is acknowledged meanwhile.
    for p in &out[1..] {
        s.handle(NOW, pkt(answer(p, Ok(Some(r#"{"recordId":"5"}"#.into())))));
    }
    let a = s.handle(NOW + 500, Event::Timer(Timer::Resume));
    assert_eq!(sign_in_ids(&sent(&a)), ["p1"]);
}

#[test]
fn an_expired_token_re_authenticates_and_resends() {
    let (mut s, a) = ready_with(2);
    let out = sent(&a);
    let a = s.handle(
        NOW,
        pkt(answer(&out[0], Err(ErrorCode::TokenNotFound.into()))),
    );
    assert_eq!(s.state(), SessionState::Authenticating);
    let auth = sent(&a)
        .into_iter()
        .find(|p| p.apicode == "C_AUTH")
        .unwrap();
    // p2 was sent with the old token too.
    s.handle(
        NOW,
        pkt(answer(&out[1], Err(ErrorCode::TokenNotFound.into()))),
    );
    let a = s.handle(
        NOW,
        pkt(answer(&auth, Ok(Some(r#"{"token":"fresh"}"#.into())))),
    );
    let again = sent(&a);
    assert_eq!(sign_in_ids(&again), ["p1", "p2"]);
    assert!(
        again
            .iter()
            .filter(|p| p.apicode == "C_SIGN_IN")
            .all(|p| p.token == "fresh")
    );
}

#[test]
fn clock_skew_is_corrected_from_the_platform_time() {
    let mut s = Session::new(config(), Rng::seeded(1));
    s.handle(NOW, Event::Start);
    let a = s.handle(NOW, Event::Connected);
    let auth = sent(&a).pop().unwrap();
    let platform = Timestamp::from_epoch_ms(NOW + 3_600_000).to_wire();
    let err = ProtocolError::with_detail(
        ErrorCode::TimestampSkew,
        format!("设备时间 {}，平台时间 {platform}", auth.time_stamp),
    );
    let a = s.handle(NOW, pkt(answer(&auth, Err(err))));
    assert!(a.iter().any(|x| matches!(x, Action::ClockCorrected { .. })));
    let again = sent(&a).pop().unwrap();
    assert_eq!(again.apicode, "C_AUTH");
    assert_eq!(again.time_stamp, platform);
}

#[test]
fn heartbeats_hand_out_each_task_once() {
    let (mut s, _) = ready_with(0);
    let a = s.handle(NOW, Event::Timer(Timer::Heartbeat));
    let hb = sent(&a)
        .into_iter()
        .find(|p| p.apicode == "C_HEARTBEAT")
        .unwrap();
    let a = s.handle(
        NOW,
        pkt(answer(&hb, Ok(Some(r#"{"taskids":["11","12"]}"#.into())))),
    );
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::FetchTasks(ids) if ids == &["11", "12"]))
    );
    // The next heartbeat lists 12 again (still running) and 13.
    let a = s.handle(NOW + 30_000, Event::Timer(Timer::Heartbeat));
    let hb = sent(&a).pop().unwrap();
    let a = s.handle(
        NOW,
        pkt(answer(&hb, Ok(Some(r#"{"taskids":["12","13"]}"#.into())))),
    );
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::FetchTasks(ids) if ids == &["13"]))
    );
    s.handle(NOW, Event::TaskFinished("12".into()));
    let a = s.handle(NOW + 60_000, Event::Timer(Timer::Heartbeat));
    let hb = sent(&a).pop().unwrap();
    let a = s.handle(
        NOW,
        pkt(answer(&hb, Ok(Some(r#"{"taskids":["12"]}"#.into())))),
    );
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::FetchTasks(ids) if ids == &["12"]))
    );
}

#[test]
fn pushed_commands_run_only_when_their_sign_verifies() {
    let (mut s, _) = ready_with(0);
    let cmd = Command {
        version: PROTOCOL_VERSION.into(),
        sn: "SN-1".into(),
        apicode: ApiCode::SendPerson,
        taskid: "777".into(),
        time_stamp: Timestamp::from_epoch_ms(NOW).to_wire(),
        param: "{}".into(),
    };
    let forged = cmd.to_packet("another secret");
    assert!(s.handle(NOW, pkt(forged)).is_empty());
    let a = s.handle(NOW, pkt(cmd.to_packet(SECRET)));
    assert!(a.iter().any(
        |x| matches!(x, Action::RunTask(t) if t.taskid == "777" && t.apicode == "T_SEND_PERSON")
    ));
    // Pushed twice: handed out once.
    assert!(s.handle(NOW, pkt(cmd.to_packet(SECRET))).is_empty());
}

#[test]
fn the_watchdog_closes_a_silent_connection() {
    let (mut s, _) = ready_with(1);
    let a = s.handle(NOW + 1_000, Event::Timer(Timer::Watchdog));
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Schedule(Timer::Watchdog, _)))
    );
    let a = s.handle(NOW + 31_000, Event::Timer(Timer::Watchdog));
    assert!(a.iter().any(|x| matches!(x, Action::Close)));
}

#[test]
fn loading_stops_when_the_store_is_drained_and_resumes_on_enqueue() {
    let (mut s, a) = ready_with(2);
    // Two records (< limit 8): exhausted, no further load.
    assert!(!a.iter().any(|x| matches!(x, Action::LoadRecords { .. })));
    let a = s.handle(NOW, Event::RecordsEnqueued);
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::LoadRecords { after: 2, .. }))
    );
}

#[test]
fn an_enqueue_during_a_load_is_not_missed() {
    let mut s = Session::new(config(), Rng::seeded(1));
    s.handle(NOW, Event::Start);
    let a = s.handle(NOW, Event::Connected);
    let auth = sent(&a).pop().unwrap();
    s.handle(NOW, pkt(answer(&auth, Ok(Some(r#"{"token":"t"}"#.into())))));
    // A record arrives while the (empty) load is outstanding.
    s.handle(NOW, Event::RecordsEnqueued);
    let a = s.handle(NOW, Event::RecordsLoaded(Vec::new()));
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::LoadRecords { after: 0, .. }))
    );
}

#[test]
fn the_network_switch_closes_and_reopens() {
    let (mut s, _) = ready_with(3);
    let a = s.handle(NOW, Event::Network(false));
    assert!(a.iter().any(|x| matches!(x, Action::Close)));
    let a = s.handle(NOW, Event::Disconnected);
    assert!(
        !a.iter()
            .any(|x| matches!(x, Action::Schedule(Timer::Reconnect, _)))
    );
    assert_eq!(s.pending(), 3);
    let a = s.handle(NOW, Event::Network(true));
    assert!(a.iter().any(|x| matches!(x, Action::Connect)));
}

#[test]
fn a_revoked_credential_is_reported_and_retried_slowly() {
    let mut s = Session::new(config(), Rng::seeded(1));
    s.handle(NOW, Event::Start);
    let a = s.handle(NOW, Event::Connected);
    let auth = sent(&a).pop().unwrap();
    let a = s.handle(
        NOW,
        pkt(answer(&auth, Err(ErrorCode::CredentialsRevoked.into()))),
    );
    assert!(a.iter().any(|x| matches!(x, Action::Refused(_))));
    let a = s.handle(NOW, Event::Disconnected);
    assert!(a.iter().any(
        |x| matches!(x, Action::Schedule(Timer::Reconnect, d) if *d == Duration::from_secs(60))
    ));
}

#[test]
fn platform_time_is_read_from_the_detail() {
    let t = platform_time_in_detail("设备时间 20240101000000，平台时间 20240101080000").unwrap();
    assert_eq!(t.to_wire(), "20240101080000");
    assert_eq!(platform_time_in_detail("no time"), None);
}
