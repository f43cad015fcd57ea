//! The catalogue: one case per requirement, each naming the rule ids of `docs/PROTOCOL.md`
//! it checks, which side it tests (the kit plays a device against a platform, or the
//! platform against a device), what it needs declared, and its scenario (tool steps and the
//! expected result). Rules the kit cannot check from outside are listed in [`UNTESTABLE`],
//! each with its reason; `tests/catalogue.rs` fails the build when a rule of the document is
//! in neither.

use rollcall_protocol::ApiCode;
use serde::Serialize;

use crate::features::{Features, Kind};

/// Which system is under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The kit plays a device; a platform is under test (`rollcall conformance platform`).
    Platform,
    /// The kit plays the platform; a terminal is under test (`rollcall conformance device`).
    Device,
}

impl Side {
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Platform => "platform",
            Side::Device => "device",
        }
    }
}

/// What a case needs declared or available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    /// The apicode is declared.
    Api(&'static str),
    /// The device kind is declared.
    Kind(Kind),
    /// Encrypted responses are declared.
    Jwe,
    /// Set-up or read-back through Rollcall's admin API (`--admin-token`); without it the case
    /// is inconclusive and says what to check by hand.
    Admin,
}

/// One test case.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Case {
    /// `P-…` for platform cases, `D-…` for device cases; stable.
    pub id: &'static str,
    pub side: Side,
    pub title: &'static str,
    pub title_zh: &'static str,
    /// The `ZJ-…` rules the case checks.
    pub rules: &'static [&'static str],
    pub needs: &'static [Need],
    /// The scenario: what the kit does and what it expects.
    pub scenario: &'static str,
}

impl Case {
    /// Why the case does not apply to these features, if it does not.
    pub fn not_applicable(&self, f: &Features) -> Option<String> {
        for need in self.needs {
            match need {
                Need::Api(a) if !f.apicodes.contains(*a) => {
                    return Some(format!("{a} is not declared / 未声明 {a}"));
                }
                Need::Kind(k) if !f.has_kind(*k) => {
                    return Some(format!(
                        "device kind {} is not declared / 未声明设备类型 {}",
                        k.as_str(),
                        k.as_str()
                    ));
                }
                Need::Jwe if !f.jwe => {
                    return Some("JWE is not declared / 未声明 JWE".into());
                }
                _ => {}
            }
        }
        None
    }

    pub fn needs_admin(&self) -> bool {
        self.needs.contains(&Need::Admin)
    }
}

const SIGN_IN: Need = Need::Api("C_SIGN_IN");
const GET_TASKS: Need = Need::Api("T_GET_TASKS");
const STATUS: Need = Need::Api("T_UPDATE_TASKS_STATUS");
const SEND: Need = Need::Api("T_SEND_PERSON");
const UPDATE: Need = Need::Api("T_UPDATE_DEVICE_PERSON");
const DEL: Need = Need::Api("T_DEL_DEVICE_PERSON");
const CLEAR: Need = Need::Api("T_CLEAR_DEVICE_PERSON");
const FW: Need = Need::Api("T_UPDATE_DEVICE_VERSION");
const POST: Need = Need::Api("T_POST_DEVICE_PERSON");
const COLLECT: Need = Need::Api("X_COLLECT_PERSON");

/// Every case of the kit.
pub const CASES: &[Case] = &[
    // --- the kit plays a device -------------------------------------------------------------
    Case {
        id: "P-FRAME-01",
        side: Side::Platform,
        title: "Framing: split frames, several frames per write, unknown fields",
        title_zh: "分帧：拆分的帧、一次写入多个帧、未知字段",
        rules: &[
            "ZJ-FRAME-01",
            "ZJ-FRAME-02",
            "ZJ-PKT-01",
            "ZJ-PKT-02",
            "ZJ-PKT-04",
        ],
        needs: &[],
        scenario: "Authenticate over TCP; send one heartbeat frame in two writes (header byte alone first), then two heartbeat frames in one write, then a heartbeat carrying an unknown protobuf field 99. Expect three successful, signed responses in order, each a Packet echoing the version.",
    },
    Case {
        id: "P-FRAME-02",
        side: Side::Platform,
        title: "Malformed frames: one unsigned error packet, then that connection closed",
        title_zh: "坏帧：发送一个不签名的错误包后关闭该连接",
        rules: &["ZJ-FRAME-03", "ZJ-FRAME-04", "ZJ-SIGN-12"],
        needs: &[],
        scenario: "On three fresh connections send: a length varint of 6 bytes; a length of 3 MiB (no body); a 4-byte body that is not a Packet. Expect 400_02, 413_01 and 400_02 respectively, each unsigned, then the connection closed; a fourth connection still authenticates.",
    },
    Case {
        id: "P-FRAME-03",
        side: Side::Platform,
        title: "Idle connections are closed",
        title_zh: "空闲连接被关闭",
        rules: &["ZJ-FRAME-05"],
        needs: &[],
        scenario: "Authenticate over TCP, then stay silent. Expect the platform to close the connection within --idle-timeout-secs (+5 s), and not after a third of it.",
    },
    Case {
        id: "P-AUTH-01",
        side: Side::Platform,
        title: "C_AUTH: token, signed answer, auto-registration, no secret on the wire",
        title_zh: "C_AUTH：token、签名应答、自动登记、密钥不上线",
        rules: &[
            "ZJ-TOKEN-01",
            "ZJ-SIGN-01",
            "ZJ-SIGN-05",
            "ZJ-SIGN-09",
            "ZJ-SIGN-10",
            "ZJ-CRED-01",
            "ZJ-CRED-02",
            "ZJ-DEV-03",
            "ZJ-TIME-01",
            "ZJ-CONN-06",
        ],
        needs: &[],
        scenario: "Check the given credentials' format; C_AUTH over TCP for a new sn with seq 7. Expect success (or 400_06 when the platform does not auto-register), a 32-hex token, seq 7 echoed, the answer signed over version+success+response; no frame carries the accessSecret.",
    },
    Case {
        id: "P-AUTH-02",
        side: Side::Platform,
        title: "Wrong credentials and signatures: 400_04, signed when the secret is known",
        title_zh: "错误凭据与签名：400_04，知道密钥时签名",
        rules: &["ZJ-CRED-04", "ZJ-SIGN-11", "ZJ-SIGN-02", "ZJ-ERR-01"],
        needs: &[],
        scenario: "C_AUTH with an unknown accessId (expect 400_04, empty sign); with the right accessId and a wrong accessKey (expect 400_04 signed with the vendor's secret over version+\"false\"); with a wrong sign (400_04). Every errormsg is the standard's text word for word.",
    },
    Case {
        id: "P-CONN-01",
        side: Side::Platform,
        title: "A cached token binds a new connection",
        title_zh: "缓存的 token 可绑定新连接",
        rules: &["ZJ-CONN-01"],
        needs: &[],
        scenario: "Authenticate, open a second connection and send C_HEARTBEAT with the cached token and no C_AUTH. Expect success; on a third connection a heartbeat with no token gets 402_03.",
    },
    Case {
        id: "P-CONN-02",
        side: Side::Platform,
        title: "Another sn or another device's token: 400_04",
        title_zh: "其他 sn 或其他设备的 token：400_04",
        rules: &["ZJ-CONN-02", "ZJ-TOKEN-04"],
        needs: &[],
        scenario: "Authenticate devices A and B. On A's connection send a heartbeat as B (with B's token): expect 400_04. Over HTTP send a heartbeat with sn A and B's token: expect 400_04.",
    },
    Case {
        id: "P-CONN-03",
        side: Side::Platform,
        title: "The newest connection wins",
        title_zh: "以最新连接为准",
        rules: &["ZJ-CONN-03"],
        needs: &[],
        scenario: "Authenticate a device on connection 1, then on connection 2. Expect connection 1 closed by the platform; connection 2 still answers.",
    },
    Case {
        id: "P-CONN-04",
        side: Side::Platform,
        title: "Only C_ apicodes over TCP",
        title_zh: "TCP 上只允许 C_ 接口",
        rules: &["ZJ-CONN-04", "ZJ-TRANS-01"],
        needs: &[GET_TASKS],
        scenario: "Over TCP, send a signed T_GET_TASKS. Expect 400_01. The same request over HTTP succeeds.",
    },
    Case {
        id: "P-CONN-05",
        side: Side::Platform,
        title: "Pipelining: one response per request, in order, seq echoed",
        title_zh: "流水线：每个请求一个应答，按序，回显 seq",
        rules: &["ZJ-CONN-05", "ZJ-CONN-06"],
        needs: &[],
        scenario: "Send eight heartbeats with seq 101..108 in one write, every other one with a bad sign. Expect eight responses in request order, seq echoed, the bad ones 400_04.",
    },
    Case {
        id: "P-ERR-01",
        side: Side::Platform,
        title: "Every envelope error code, with the standard's message",
        title_zh: "每个报文错误码及标准文字",
        rules: &[
            "ZJ-ERR-01",
            "ZJ-ERR-02",
            "ZJ-ERR-03",
            "ZJ-PKT-03",
            "ZJ-TIME-02",
            "ZJ-TIME-03",
            "ZJ-TIME-04",
            "ZJ-TOKEN-03",
        ],
        needs: &[],
        scenario: "One request per defect, otherwise valid and signed: no apicode (400_01, never 402_04), unknown apicode (400_01), no version (402_01), no sn (402_02), no token (402_03), no timeStamp on C_HEARTBEAT (402_05), no param (402_06), no sign (402_07), no taskid on T_DEL_DEVICE_PERSON (402_08), timeStamp 2021-13-45 (404_01), timeStamp an hour off (400_05 whose detail carries the platform's time), an unknown token (401_01), a T_GET_TASKS without timeStamp (success: optional on T_).",
    },
    Case {
        id: "P-ERR-02",
        side: Side::Platform,
        title: "Error precedence",
        title_zh: "错误优先级",
        rules: &["ZJ-ERR-04"],
        needs: &[],
        scenario: "Requests with two defects each: no sign and a malformed timeStamp (402_07); a bad sign and a malformed timeStamp (404_01); a bad sign and a skewed timeStamp (400_05); an unknown token and a bad sign (401_01); no apicode and no sn (400_01); a bad sign and a param member of the wrong type (400_04).",
    },
    Case {
        id: "P-ERR-03",
        side: Side::Platform,
        title: "An untokenizable param of an img-cut apicode: 400_02 before the signature",
        title_zh: "需剪切图片的接口 param 无法分词：先于验签应答 400_02",
        rules: &["ZJ-ERR-05", "ZJ-SIGN-08"],
        needs: &[SIGN_IN],
        scenario: "C_SIGN_IN whose param is `{\"personId\":\"1\",` (cut off) with a bad sign. Expect 400_02, not 400_04.",
    },
    Case {
        id: "P-ERR-04",
        side: Side::Platform,
        title: "Rate limit: 429_01, never on C_SIGN_IN",
        title_zh: "限流：429_01，从不作用于 C_SIGN_IN",
        rules: &["ZJ-ERR-07"],
        needs: &[],
        scenario: "Pipeline 150 heartbeats on one connection. Expect some 429_01 after the burst of 100; then 20 sign-ins, none 429_01. When no heartbeat is refused the platform's limit is off or higher: inconclusive.",
    },
    Case {
        id: "P-TOKEN-01",
        side: Side::Platform,
        title: "Sliding token expiry",
        title_zh: "token 滑动过期",
        rules: &["ZJ-TOKEN-02"],
        needs: &[],
        scenario: "Authenticate over HTTP; use the token every 0.6 × token idle time three times (each succeeds, though 1.8 × idle has passed since C_AUTH); then wait idle + 2 s: expect 401_01.",
    },
    Case {
        id: "P-TOKEN-02",
        side: Side::Platform,
        title: "A new C_AUTH does not revoke earlier tokens",
        title_zh: "新的 C_AUTH 不吊销旧 token",
        rules: &["ZJ-TOKEN-05"],
        needs: &[],
        scenario: "C_AUTH twice over HTTP for one sn; both tokens answer a heartbeat.",
    },
    Case {
        id: "P-CRED-01",
        side: Side::Platform,
        title: "Rotated credentials and their tokens: 401_02, also once expired",
        title_zh: "已轮换的凭据及其 token：401_02，过期后亦然",
        rules: &["ZJ-CRED-03", "ZJ-CRED-01", "ZJ-ERR-04"],
        needs: &[Need::Admin],
        scenario: "Make a vendor, authenticate a device, rotate the vendor's credentials (admin API). Expect the old pair 401_02, the old token 401_02, the new credentials 32-hex and working; after token idle + 2 s the old token still gets 401_02 (401_02 precedes 401_01).",
    },
    Case {
        id: "P-DEV-01",
        side: Side::Platform,
        title: "An sn of another vendor: 400_04",
        title_zh: "属于其他厂商的 sn：400_04",
        rules: &["ZJ-DEV-01", "ZJ-DEV-02"],
        needs: &[Need::Admin],
        scenario: "Register an sn under a second vendor (admin API); C_AUTH for it with the first vendor's credentials. Expect 400_04.",
    },
    Case {
        id: "P-DEV-02",
        side: Side::Platform,
        title: "A disabled device: 400_06 on every apicode",
        title_zh: "已停用设备：所有接口 400_06",
        rules: &["ZJ-DEV-04"],
        needs: &[Need::Admin],
        scenario: "Authenticate a device, disable it (admin API). Expect 400_06 on C_HEARTBEAT with its token, on C_AUTH and on T_GET_TASKS.",
    },
    Case {
        id: "P-HB-01",
        side: Side::Platform,
        title: "Heartbeat param and answer",
        title_zh: "心跳参数与应答",
        rules: &["ZJ-HB-01", "ZJ-HTTP-05", "ZJ-SIGN-09", "ZJ-SIGN-10"],
        needs: &[],
        scenario: "A heartbeat of a device with no tasks: expect `{\"taskids\":[]}`, signed. A heartbeat without deviceIp: expect 400_02 naming it.",
    },
    Case {
        id: "P-HB-02",
        side: Side::Platform,
        title: "Online window, recorded version and IP, presence history",
        title_zh: "在线窗口、记录版本与 IP、在线历史",
        rules: &["ZJ-HB-03", "ZJ-HB-04"],
        needs: &[Need::Admin],
        scenario: "Heartbeat with deviceVersion and deviceIp; after a few seconds the admin API shows the device online with that version and IP. Stay silent for offline window + 5 s: the device is offline and the presence history holds the online → offline transitions.",
    },
    Case {
        id: "P-HTTP-01",
        side: Side::Platform,
        title: "HTTP transport: C_ over HTTP, status 200 for errors, the path alias",
        title_zh: "HTTP 传输：经 HTTP 的 C_ 接口、错误也是 200、路径别名",
        rules: &[
            "ZJ-TRANS-01",
            "ZJ-TRANS-02",
            "ZJ-TRANS-03",
            "ZJ-HTTP-01",
            "ZJ-HTTP-03",
        ],
        needs: &[],
        scenario: "C_AUTH and C_HEARTBEAT over HTTP succeed; `not json` gets HTTP 200 with 400_02; POST /device/api/C_HEARTBEAT without apicode in the body succeeds; with body apicode C_SIGN_IN it gets 400_01. Each answer has version, success, apicode and sign.",
    },
    Case {
        id: "P-HTTP-02",
        side: Side::Platform,
        title: "An oversize HTTP body: HTTP 413 with 413_01",
        title_zh: "超大的 HTTP 请求体：HTTP 413 与 413_01",
        rules: &["ZJ-TRANS-04"],
        needs: &[],
        scenario: "POST a 16 MiB + 1 byte body. Expect HTTP status 413 and a 413_01 body.",
    },
    Case {
        id: "P-JSON-01",
        side: Side::Platform,
        title: "Lenient JSON in, strict JSON out; object params signed as sent",
        title_zh: "宽松 JSON 输入、严格 JSON 输出；对象 param 按原文签名",
        rules: &[
            "ZJ-JSON-01",
            "ZJ-JSON-02",
            "ZJ-JSON-04",
            "ZJ-HTTP-02",
            "ZJ-SIGN-03",
            "ZJ-SIGN-04",
        ],
        needs: &[],
        scenario: "Heartbeats over HTTP: param as an object with spaces, signed over its raw text; an envelope with unquoted keys and single quotes whose param object is signed over its compact strict form; a sign-in with recordTime as a string and type as a string. All succeed and every answer parses as strict JSON.",
    },
    Case {
        id: "P-SIGN-01",
        side: Side::Platform,
        title: "Param without img: forms A and B",
        title_zh: "去除 img 的 param：A 形式与 B 形式",
        rules: &["ZJ-SIGN-05", "ZJ-SIGN-06", "ZJ-SIGN-07", "ZJ-SIGN-08"],
        needs: &[SIGN_IN],
        scenario: "C_SIGN_IN whose param has img in the middle, amid whitespace, with `36.70` and a `\\u5f20` escape: signed over form A (whitespace dropped) succeeds; over form B (whitespace kept) succeeds; over the whole param (img kept) gets 400_04.",
    },
    Case {
        id: "P-SIGNIN-01",
        side: Side::Platform,
        title: "Sign-in validation: dictionary codes, img, required members",
        title_zh: "考勤校验：字典错误码、img、必填成员",
        rules: &["ZJ-SIGNIN-01", "ZJ-SIGNIN-02", "ZJ-SIGNIN-03", "ZJ-ERR-06"],
        needs: &[SIGN_IN],
        scenario: "Sign-ins with type 3 (403_01), bitType 1 (403_02), qrCodeInfo.type 3 (403_03), img `!!!` (400_02), qrCodeInfo without type (400_02 naming it), no recordTime (400_02); a complete record succeeds.",
    },
    Case {
        id: "P-SIGNIN-02",
        side: Side::Platform,
        title: "Resent records are deduplicated",
        title_zh: "重复上报的记录去重",
        rules: &["ZJ-SIGNIN-05"],
        needs: &[SIGN_IN],
        scenario: "Send a record, then the same (sn, personId, recordTime, type) again, over TCP and over HTTP. Expect success each time; the first `duplicate:false`, the resends `duplicate:true` with the same recordId.",
    },
    Case {
        id: "P-SIGNIN-03",
        side: Side::Platform,
        title: "Records stored and flagged, never refused; latency recorded",
        title_zh: "记录保存并标记，不拒收；记录上传延时",
        rules: &["ZJ-SIGNIN-04", "ZJ-SIGNIN-07", "ZJ-SIGNIN-09", "ZJ-TASK-09"],
        needs: &[SIGN_IN, Need::Admin],
        scenario: "An unbound device signs in an unknown person with a PNG-magic-less img, one record taken 60 s ago, and a type 2 record. Expect each stored (admin API) with flags unknown_person, unbound_device, photo_rejected, late_upload, indirect_method as they apply, and a latency of about 60 s.",
    },
    Case {
        id: "P-SIGNIN-04",
        side: Side::Platform,
        title: "Mobile attendance: fence in GCJ-02, no coordinate",
        title_zh: "移动考勤：GCJ-02 电子围栏、缺少坐标",
        rules: &["ZJ-SIGNIN-08"],
        needs: &[SIGN_IN, Need::Kind(Kind::Mobile), Need::Admin],
        scenario: "A project with a 200 m circular fence (GCJ-02), a bound device. Type 64 inside the fence: no outside_fence; 5 km away: outside_fence; no coordinate: no_coordinate.",
    },
    Case {
        id: "P-TASK-01",
        side: Side::Platform,
        title: "Tasks: pushed and signed, fetched, reported",
        title_zh: "任务：签名下发、拉取、上报",
        rules: &[
            "ZJ-TASK-01",
            "ZJ-TASK-02",
            "ZJ-TASK-03",
            "ZJ-CONN-07",
            "ZJ-CONN-08",
            "ZJ-PERSON-01",
            "ZJ-STATUS-01",
            "ZJ-STATUS-02",
            "ZJ-STATUS-03",
            "ZJ-STATUS-04",
            "ZJ-HTTP-04",
            "ZJ-JSON-03",
        ],
        needs: &[GET_TASKS, STATUS, CLEAR, Need::Admin],
        scenario: "With the device online over TCP, create a T_CLEAR_DEVICE_PERSON (admin API). Expect it pushed at once as a signed command with a 19-digit taskid; T_GET_TASKS returns it (and skips an unknown id); a status report without personCount gets 400_02; a full report (plus an entry for an unknown task) is acknowledged; the task is then done and the device's personCount and faceCount recorded.",
    },
    Case {
        id: "P-TASK-02",
        side: Side::Platform,
        title: "Person tasks: merge, supersede, bind, unbind",
        title_zh: "人员任务：合并、取代、绑定、解绑",
        rules: &[
            "ZJ-TASK-05",
            "ZJ-TASK-06",
            "ZJ-TASK-07",
            "ZJ-TASK-08",
            "ZJ-PERSON-04",
        ],
        needs: &[SEND, UPDATE, CLEAR, STATUS, Need::Admin],
        scenario: "An offline device bound to a project (one T_SEND_PERSON); two workers join one after the other: one T_UPDATE_DEVICE_PERSON holding both, which answers them; rebinding to another project: a new T_SEND_PERSON, the older tasks cancelled; a late status for a cancelled task is acknowledged and changes nothing; unbinding: one T_CLEAR_DEVICE_PERSON.",
    },
    Case {
        id: "P-TASK-03",
        side: Side::Platform,
        title: "Heartbeat task list and redelivery",
        title_zh: "心跳任务列表与重发",
        rules: &["ZJ-HB-02"],
        needs: &[GET_TASKS, CLEAR, Need::Admin],
        scenario: "Two tasks for a device: the heartbeat lists both, oldest first; after T_GET_TASKS delivers them they are not listed; after the redelivery time + 2 s without a status they are listed again.",
    },
    Case {
        id: "P-PERSON-01",
        side: Side::Platform,
        title: "T_SEND_PERSON: whole roster, paging, signed photo URLs",
        title_zh: "T_SEND_PERSON：完整名单、分页、签名照片 URL",
        rules: &[
            "ZJ-PERSON-02",
            "ZJ-PERSON-03",
            "ZJ-URL-01",
            "ZJ-URL-02",
            "ZJ-STATUS-04",
        ],
        needs: &[SEND, STATUS, Need::Admin],
        scenario: "A project of 12 workers with faces, a device bound to it. Page 1 (no size): 10 persons, size 10 echoed, totalPage 2; page 2: 2; page 3: empty; size 500: clamped to 100. Every imgUrl is absolute under the platform's URL and downloads a picture; the same URL with its signature altered is refused. A status report naming one refused person records it with its errCode.",
    },
    Case {
        id: "P-PERSON-02",
        side: Side::Platform,
        title: "T_DEL_DEVICE_PERSON and T_CLEAR_DEVICE_PERSON answers; unknown task 405_01",
        title_zh: "T_DEL_DEVICE_PERSON 与 T_CLEAR_DEVICE_PERSON 应答；未知任务 405_01",
        rules: &["ZJ-PERSON-05", "ZJ-PERSON-06"],
        needs: &[DEL, CLEAR, Need::Admin],
        scenario: "Create a T_DEL_DEVICE_PERSON for two persons and a T_CLEAR_DEVICE_PERSON. Expect `{personIds:[…]}` with both, an acknowledgement for the clear, and 405_01 for a made-up taskid.",
    },
    Case {
        id: "P-FW-01",
        side: Side::Platform,
        title: "Firmware task",
        title_zh: "固件升级任务",
        rules: &["ZJ-FW-01", "ZJ-FW-02", "ZJ-SIGN-14"],
        needs: &[FW, Need::Admin],
        scenario: "Create a T_UPDATE_DEVICE_VERSION. Expect T_GET_TASKS to carry {version,size,downloadUrl,sha256}; the interface answers the same members, its sign over version+success+taskid only; the downloadUrl is signed (carries a signature and expiry) when delivered.",
    },
    Case {
        id: "P-RECON-01",
        side: Side::Platform,
        title: "Reconciliation upload in pages",
        title_zh: "分页上报数据校对",
        rules: &["ZJ-RECON-01", "ZJ-RECON-02", "ZJ-RECON-03", "ZJ-RECON-04"],
        needs: &[POST, Need::Admin],
        scenario: "Create a T_POST_DEVICE_PERSON with excludeFields. The task param carries excludeFields; a page whose img is unusable is still taken (checked, not kept); page 1 of 2, page 1 again, page 2: each acknowledged.",
    },
    Case {
        id: "P-JWE-01",
        side: Side::Platform,
        title: "Encrypted responses",
        title_zh: "加密应答",
        rules: &["ZJ-JWE-01", "ZJ-JWE-02", "ZJ-JWE-03", "ZJ-JWE-04"],
        needs: &[Need::Jwe, Need::Admin],
        scenario: "A vendor registered with the kit's RSA public key (a 1024-bit key refused). Its device's C_AUTH answer is a JWE (RSA-OAEP-256, A256GCM) that decrypts to {token}; the sign covers the JWE text; an error answer stays in clear.",
    },
    Case {
        id: "P-COLLECT-01",
        side: Side::Platform,
        title: "Collection terminal: X_COLLECT_PERSON",
        title_zh: "采集终端：X_COLLECT_PERSON",
        rules: &[
            "ZJ-COLLECT-01",
            "ZJ-COLLECT-02",
            "ZJ-COLLECT-03",
            "ZJ-COLLECT-04",
            "ZJ-COLLECT-05",
            "ZJ-COLLECT-06",
            "ZJ-COLLECT-07",
        ],
        needs: &[COLLECT, Need::Kind(Kind::Collector), Need::Admin],
        scenario: "A collector device uploads an enrolment signed without its images: {personId}; again with the same idcardNo: the same personId; without timeStamp: 402_05; a facePhoto that is not base64: 400_02 naming it; a bad ID-card number: 400_02; a face terminal: 400_01; over TCP: 400_01.",
    },
    // --- the kit plays the platform ---------------------------------------------------------
    Case {
        id: "D-AUTH-01",
        side: Side::Device,
        title: "The terminal authenticates correctly",
        title_zh: "终端正确认证",
        rules: &[
            "ZJ-SIGN-01",
            "ZJ-SIGN-05",
            "ZJ-TIME-01",
            "ZJ-CRED-02",
            "ZJ-FRAME-01",
        ],
        needs: &[],
        scenario: "Wait for the terminal's C_AUTH on TCP. Expect the given accessId and accessKey, a Beijing timeStamp within 5 minutes, a valid sign, and no frame carrying the accessSecret.",
    },
    Case {
        id: "D-HB-01",
        side: Side::Device,
        title: "Heartbeats: signed, with deviceVersion and deviceIp, at a steady cadence",
        title_zh: "心跳：签名、带版本和 IP、节奏稳定",
        rules: &["ZJ-HB-01", "ZJ-HB-03", "ZJ-CONN-01"],
        needs: &[],
        scenario: "After C_AUTH, collect heartbeats for --heartbeat-window-secs. Expect at least two, each signed with the token, with deviceVersion and deviceIp, on the bound connection; the median interval within --heartbeat-tolerance-pct of the configured --heartbeat-secs, and no gap reaching the standard's 60 s offline window.",
    },
    Case {
        id: "D-TOKEN-01",
        side: Side::Device,
        title: "401_01 makes the terminal authenticate again",
        title_zh: "收到 401_01 后终端重新认证",
        rules: &["ZJ-TOKEN-03"],
        needs: &[],
        scenario: "Answer one heartbeat 401_01. Expect the terminal's next request to be a C_AUTH, and the old token never used again.",
    },
    Case {
        id: "D-TIME-01",
        side: Side::Device,
        title: "The terminal takes the platform's time from a 400_05",
        title_zh: "终端按 400_05 中的平台时间校正时钟",
        rules: &["ZJ-TIME-03"],
        needs: &[],
        scenario: "Answer one heartbeat 400_05 whose detail gives the platform's time 10 minutes ahead: the terminal's next timeStamp follows it (±2 min). Then once more with the real time: the terminal comes back.",
    },
    Case {
        id: "D-TASK-01",
        side: Side::Device,
        title: "Person tasks run one at a time in taskid order and are reported",
        title_zh: "人员任务按 taskid 顺序逐个执行并上报",
        rules: &["ZJ-TASK-04", "ZJ-CONN-07", "ZJ-STATUS-01", "ZJ-STATUS-02"],
        needs: &[SEND, DEL, STATUS],
        scenario: "Push three person tasks as commands in one write, and list them newest first in the heartbeat answer (T_SEND_PERSON of three persons, T_DEL_DEVICE_PERSON of one, T_SEND_PERSON of one). Expect the terminal to call the interfaces in taskid order over HTTP, to send no TCP reply to a command, and to report each task with personCount and faceCount.",
    },
    Case {
        id: "D-PERSON-01",
        side: Side::Device,
        title: "Roster download: every page and every face",
        title_zh: "名单下载：每一页与每张人脸",
        rules: &["ZJ-PERSON-02", "ZJ-PERSON-03", "ZJ-URL-01"],
        needs: &[SEND, STATUS],
        scenario: "Offer a T_SEND_PERSON of 12 persons. Expect every page fetched (at the page size the terminal asks for), every imgUrl downloaded, and the task reported with personCount 12 (the whole list replaced).",
    },
    Case {
        id: "D-RECON-01",
        side: Side::Device,
        title: "Reconciliation upload",
        title_zh: "数据校对上报",
        rules: &["ZJ-RECON-01", "ZJ-RECON-03"],
        needs: &[POST, STATUS],
        scenario: "Offer a T_POST_DEVICE_PERSON with excludeFields img. Expect pages 1..totalPage uploaded with one totalPage and valid signs, no row carrying img, then the task reported.",
    },
    Case {
        id: "D-JWE-01",
        side: Side::Device,
        title: "Encrypted answers are decrypted",
        title_zh: "终端解密加密应答",
        rules: &["ZJ-JWE-02"],
        needs: &[Need::Jwe, DEL, STATUS],
        scenario: "Encrypt every success answer with the terminal's public key (--rsa-public-key) and offer a T_DEL_DEVICE_PERSON by heartbeat only. Expect the terminal to find it, fetch it, run it and report it done.",
    },
    Case {
        id: "D-STATUS-01",
        side: Side::Device,
        title: "Faces it cannot take are reported failed",
        title_zh: "无法采用的人脸在状态上报中列为失败",
        rules: &["ZJ-STATUS-01"],
        needs: &[SEND, STATUS],
        scenario: "Offer a T_SEND_PERSON of three persons: one good face, one whose URL answers 404, one whose URL answers a body that is no image. Expect the task's status report to list the two bad ones in failedFaces (or failedPersons), each with an errCode, and not the good one.",
    },
    Case {
        id: "D-FW-01",
        side: Side::Device,
        title: "Firmware is checked against the sha256 of the signed task param",
        title_zh: "固件按已签名任务参数中的 sha256 校验",
        rules: &["ZJ-FW-03"],
        needs: &[FW, STATUS],
        scenario: "Offer a T_UPDATE_DEVICE_VERSION of the package given with --firmware, its param carrying a wrong sha256: expect status 2 (refused). Then the same package with its right sha256: expect status 1 (installed).",
    },
    Case {
        id: "D-KIND-IRIS",
        side: Side::Device,
        title: "An iris terminal's records carry irisInfo",
        title_zh: "虹膜终端的记录带 irisInfo",
        rules: &["ZJ-SIGNIN-01"],
        needs: &[SIGN_IN, Need::Kind(Kind::Iris)],
        scenario: "Prompt the operator to take one record of this kind. Expect a record of type 32 with a non-empty irisInfo.",
    },
    Case {
        id: "D-KIND-MOBILE",
        side: Side::Device,
        title: "A mobile terminal's records carry its GPS coordinate",
        title_zh: "移动考勤终端的记录带 GPS 坐标",
        rules: &["ZJ-SIGNIN-01"],
        needs: &[SIGN_IN, Need::Kind(Kind::Mobile)],
        scenario: "Prompt the operator to take one record of this kind. Expect a record of type 64 with a coordinate {longitude, latitude} that is a place on Earth (not 0,0).",
    },
    Case {
        id: "D-KIND-QR",
        side: Side::Device,
        title: "A QR terminal's records carry the code's information",
        title_zh: "二维码终端的记录带二维码信息",
        rules: &["ZJ-SIGNIN-01"],
        needs: &[SIGN_IN, Need::Kind(Kind::Qr)],
        scenario: "Prompt the operator to take one record of this kind. Expect a record of type 16 with qrCodeInfo of type 1 or 2 and a codeValue.",
    },
    Case {
        id: "D-OFFLINE-01",
        side: Side::Device,
        title: "Records taken offline are queued and sent once, after the network returns",
        title_zh: "断网期间的考勤记录被缓存，恢复后补传且不重复",
        rules: &["ZJ-SIGNIN-05"],
        needs: &[SIGN_IN],
        scenario: "The operator cuts the terminal's network (prompted, Enter when done; or, with --kit-cuts-network, the kit refuses every connection for --outage-secs), takes records offline, and restores it. Expect every record taken offline to arrive once the network is back, and none the kit acknowledged sent again.",
    },
    Case {
        id: "D-SIGNIN-01",
        side: Side::Device,
        title: "Records: signed without img, resent after a forced disconnect without duplicates",
        title_zh: "考勤记录：去除 img 签名，断线后重发且无重复",
        rules: &["ZJ-SIGN-06", "ZJ-SIGNIN-01", "ZJ-SIGNIN-05"],
        needs: &[SIGN_IN],
        scenario: "The tester (or the test) makes the terminal take records; the kit cuts the connection after the first acknowledgement and then accepts the rest. Expect every record signed over the param without img, with personId, type and recordTime, and no record the kit acknowledged sent again.",
    },
];

/// Rules no case checks, each with the reason.
pub const UNTESTABLE: &[(&str, &str)] = &[
    (
        "ZJ-TRANS-05",
        "Default listen addresses are a deployment setting: the kit is told the addresses under test.",
    ),
    (
        "ZJ-SIGN-13",
        "Constant-time comparison cannot be judged reliably over a network in a test run; a code review checks it.",
    ),
    (
        "ZJ-SIGNIN-06",
        "Durability before the acknowledgement needs the platform to crash after answering; the kit cannot crash a platform under test (Rollcall's own crash test checks it).",
    ),
    (
        "ZJ-RECON-05",
        "Where the comparison report appears is the platform's own console, not the device protocol; the kit cannot read it on a third-party platform.",
    ),
    (
        "ZJ-RECON-06",
        "auto_repair is a platform setting, off by default; the kit cannot know or change it.",
    ),
    (
        "ZJ-JWE-05",
        "require_encryption is a platform setting, off by default; the kit cannot know or change it.",
    ),
];

/// The cases of one side.
pub fn cases(side: Side) -> impl Iterator<Item = &'static Case> {
    CASES.iter().filter(move |c| c.side == side)
}

/// The case with this id.
pub fn case(id: &str) -> Option<&'static Case> {
    CASES.iter().find(|c| c.id == id)
}

/// The apicodes a case may name; used by the catalogue test.
pub fn known_apicode(name: &str) -> bool {
    name.parse::<ApiCode>().is_ok()
}
