//! X_COLLECT_PERSON (ZJ-COLLECT-01 to ZJ-COLLECT-06, ext): a collection device (采集设备) enrols a worker once; a collector
//! bound to a project also enrols the worker into it, so the worker reaches every gate of
//! the site at once. A worker already enrolled (same ID-card number) keeps their person id.

use rollcall_protocol::code::{ErrorCode, ProtocolError};
use rollcall_protocol::envelope::Request;
use rollcall_protocol::params::{self, CollectPersonParam, CollectPersonResponse};
use rollcall_protocol::time::today_beijing;

use super::{Authed, param, reply};
use crate::pipeline::error::DeviceError;
use crate::services::workers;
use crate::state::App;
use crate::store::{DeviceKind, StoreError, Worker};
use rollcall_rules::idcard::{Gender, IdCardNo};
use rollcall_rules::photo;
use rollcall_rules::validate::{FieldError, optional_text, required_text};

pub(super) async fn handle(
    app: &App,
    req: &Request,
    authed: &Authed,
) -> Result<Option<String>, DeviceError> {
    // ZJ-COLLECT-07: only a collection device enrols; any other kind is refused before its
    // param is read, so nothing is stored.
    if authed.device.kind != DeviceKind::Collector {
        return Err(ProtocolError::with_detail(
            ErrorCode::ApiCodeInvalid,
            "X_COLLECT_PERSON 仅限采集设备（kind collector）",
        )
        .into());
    }
    let p: CollectPersonParam = param(req)?;
    // ZJ-COLLECT-05: a failed enrolment rule is 400_02 naming the field (here RC-DEV-04).
    let idcard = IdCardNo::parse(&p.idcard_no, today_beijing(authed.now))
        .map_err(|e| DeviceError::param(format!("idcardNo: {e}")))?;
    // The text rules of the admin API's enrolment (services::workers::enrol, with its
    // limits): trimmed, capped, no control characters; a failure names the field and stores
    // nothing.
    let field = |e: FieldError| DeviceError::param(format!("{}: {}", e.field, e.message));
    let name = required_text("name", &p.name, 64).map_err(field)?;
    let gender = optional_text("gender", p.gender.as_deref(), 8)
        .map_err(field)?
        .or_else(|| {
            Some(
                match idcard.gender() {
                    Gender::Male => "男",
                    Gender::Female => "女",
                }
                .to_owned(),
            )
        });
    let nation = optional_text("nation", p.nation.as_deref(), 32).map_err(field)?;
    let address = optional_text("address", p.address.as_deref(), 200).map_err(field)?;
    let phone = optional_text("phone", p.phone.as_deref(), 32).map_err(field)?;
    // Every image is base64 (400_02 naming it, ZJ-COLLECT-04); the ID-card images are JPEG/PNG
    // (RC-DEV-06) and the iris images 640×480 single-channel 8-bit (RC-DEV-14). The face's own
    // rules follow.
    for (name, bytes) in p.decode_images()? {
        let checked = match name {
            "facePhoto" => Ok(()),
            "irisLeft" | "irisRight" => check_iris(&bytes),
            _ => photo::inspect(&bytes, usize::MAX)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        checked.map_err(|e| DeviceError::param(format!("{name}: {e}")))?;
    }
    let face = params::decode_base64("facePhoto", &p.face_photo)?;
    let info = photo::inspect(&face, app.settings.max_photo_bytes)
        .map_err(|e| DeviceError::param(format!("facePhoto: {e}")))?;

    let person_id = match app.store.worker_by_idcard(idcard.as_str()).await? {
        Some(existing) => existing.person_id,
        None => {
            // The face rules of enrolment (RC-DEV-07…12, when `face_rules` is on), before
            // anything is stored; the photo of a worker already enrolled is not kept.
            let face = std::sync::Arc::new(face);
            workers::check_face(app, &face).await.map_err(field)?;
            let person_id = app.ids.next();
            let face_key = workers::store_face(app, person_id, &face, info).await?;
            let worker = Worker {
                person_id,
                idcard_no: idcard.as_str().to_owned(),
                name,
                gender,
                nation,
                address,
                phone,
                face_key: Some(face_key),
                created_at: authed.now,
                updated_at: authed.now,
            };
            match workers::create(app, &worker).await {
                Ok(()) => person_id,
                // Enrolled meanwhile through another path: use that person.
                Err(StoreError::Conflict(_)) => app
                    .store
                    .worker_by_idcard(idcard.as_str())
                    .await?
                    .map(|w| w.person_id)
                    .ok_or_else(|| DeviceError::Internal("worker conflict".into()))?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    tracing::info!(sn = %authed.sn, idcard = %idcard, person_id, "worker collected");
    if let Some(project) = authed.device.project_id {
        workers::join_project(app, project, &[person_id]).await?;
    }
    reply(&CollectPersonResponse {
        person_id: person_id.to_string(),
    })
}

/// An iris image: 640×480 with one 8-bit channel (GB/T 26237.6-2014 VGA monocular) — an 8-bit
/// BMP (the default), or a greyscale 8-bit PNG or JPEG. Only headers are read.
fn check_iris(bytes: &[u8]) -> Result<(), String> {
    use image::{ColorType, ImageDecoder, ImageFormat, ImageReader};
    const UNREADABLE: &str = "虹膜图像无法读取";
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| UNREADABLE.to_owned())?;
    let format = reader.format();
    let decoder = reader.into_decoder().map_err(|_| UNREADABLE.to_owned())?;
    let (width, height) = decoder.dimensions();
    if (width, height) != (640, 480) {
        return Err(format!("虹膜图像应为 640×480，实际 {width}×{height}"));
    }
    let single_channel = match format {
        // Bits per pixel of the BMP info header (an 8-bit BMP is palette-indexed grey).
        Some(ImageFormat::Bmp) => bytes.get(28..30) == Some(&[8, 0][..]),
        _ => decoder.color_type() == ColorType::L8,
    };
    if !single_channel {
        return Err("虹膜图像应为单通道 8 位灰度图".to_owned());
    }
    Ok(())
}
