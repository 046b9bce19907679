//! The simulated hardware: what kind of device, and its random identity.

use serde::{Deserialize, Serialize};

/// The kind of Apple device to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeviceKind {
    /// An iPhone 14 Pro (`iPhone15,2`) on iOS 18.1.
    IPhone,
    /// A MacBook Air M2 (`Mac14,2`) on macOS 15.1.
    Mac,
}

/// Hardware and software identity of a simulated device, as reported in
/// `Authenticate` and `DeviceInformation`. All fields are public so tests can
/// pin them (e.g. a fixed serial number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Device kind.
    pub kind: DeviceKind,
    /// `UDID`: `00008030-` + 16 upper-case hex digits (iPhone) or an
    /// upper-case UUID (Mac).
    pub udid: String,
    /// `SerialNumber`: 12 upper-case alphanumerics (no `I`/`O`).
    pub serial_number: String,
    /// `Model` (`iPhone` / `Mac`).
    pub model: String,
    /// `ModelName` (`iPhone` / `MacBook Air`).
    pub model_name: String,
    /// `ModelNumber`, e.g. `MQ0T3LL/A`.
    pub model_number: String,
    /// `ProductName` (`iPhone15,2` / `Mac14,2`).
    pub product_name: String,
    /// `OSVersion` (`18.1` / `15.1`).
    pub os_version: String,
    /// `BuildVersion` (`22B83` / `24B83`).
    pub build_version: String,
    /// `DeviceName`.
    pub device_name: String,
    /// `IMEI` (iPhone only; 15 digits, valid Luhn check digit).
    pub imei: Option<String>,
    /// `MEID` (iPhone only; 14 digits).
    pub meid: Option<String>,
    /// `WiFiMAC`, lower-case colon-separated.
    pub wifi_mac: String,
    /// `BluetoothMAC`.
    pub bluetooth_mac: String,
    /// `DeviceCapacity` in GB.
    pub device_capacity_gb: f64,
    /// `AvailableDeviceCapacity` in GB.
    pub available_capacity_gb: f64,
    /// `BatteryLevel` (0.0..=1.0).
    pub battery_level: f64,
}

impl DeviceInfo {
    /// A fresh random identity for `kind`.
    pub fn random(kind: DeviceKind) -> Self {
        let serial_number = random_serial_number();
        let suffix = serial_number.get(8..).unwrap_or("0000").to_owned();
        match kind {
            DeviceKind::IPhone => {
                let imei = random_imei();
                Self {
                    kind,
                    udid: format!("00008030-{}", random_hex_upper(8)),
                    serial_number,
                    model: "iPhone".into(),
                    model_name: "iPhone".into(),
                    model_number: "MQ0T3LL/A".into(),
                    product_name: "iPhone15,2".into(),
                    os_version: "18.1".into(),
                    build_version: "22B83".into(),
                    device_name: format!("Simulated iPhone {suffix}"),
                    meid: imei.get(..14).map(str::to_owned),
                    imei: Some(imei),
                    wifi_mac: random_mac(),
                    bluetooth_mac: random_mac(),
                    device_capacity_gb: 128.0,
                    available_capacity_gb: 87.41,
                    battery_level: 0.82,
                }
            }
            DeviceKind::Mac => Self {
                kind,
                udid: uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase(),
                serial_number,
                model: "Mac".into(),
                model_name: "MacBook Air".into(),
                model_number: "Z15S000CTLL/A".into(),
                product_name: "Mac14,2".into(),
                os_version: "15.1".into(),
                build_version: "24B83".into(),
                device_name: format!("Simulated MacBook Air {suffix}"),
                imei: None,
                meid: None,
                wifi_mac: random_mac(),
                bluetooth_mac: random_mac(),
                device_capacity_gb: 494.38,
                available_capacity_gb: 301.9,
                battery_level: 0.91,
            },
        }
    }

    /// Whether this is an iOS device.
    pub fn is_ios(&self) -> bool {
        self.kind == DeviceKind::IPhone
    }

    /// A Mac.
    pub fn is_mac(&self) -> bool {
        self.kind == DeviceKind::Mac
    }
}

fn random_hex_upper(bytes: usize) -> String {
    hex::encode_upper(mamori_crypto::random_bytes(bytes))
}

/// Apple serial numbers avoid `I` and `O`.
const SERIAL_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";

fn random_serial_number() -> String {
    random_from(SERIAL_ALPHABET, 12)
}

/// `n` symbols drawn uniformly from `alphabet` (rejection sampling).
fn random_from(alphabet: &[u8], n: usize) -> String {
    let len = alphabet.len();
    let limit = 256 - 256 % len;
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in mamori_crypto::random_bytes(n) {
            let b = usize::from(b);
            if b < limit && out.len() < n {
                if let Some(c) = alphabet.get(b % len) {
                    out.push(char::from(*c));
                }
            }
        }
    }
    out
}

/// 15-digit IMEI: reporting body `35` + 12 random digits + Luhn check digit.
fn random_imei() -> String {
    let body = format!("35{}", random_from(b"0123456789", 12));
    let check = luhn_check_digit(&body);
    format!("{body}{check}")
}

fn luhn_check_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// A MAC address under one of Apple's OUIs.
fn random_mac() -> String {
    let tail = mamori_crypto::random_bytes(3);
    let mut parts = vec!["f0".to_owned(), "18".to_owned(), "98".to_owned()];
    parts.extend(tail.iter().map(|b| format!("{b:02x}")));
    parts.join(":")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn luhn_valid(n: &str) -> bool {
        let (body, check) = n.split_at(n.len() - 1);
        luhn_check_digit(body) == check.parse::<u32>().unwrap()
    }

    #[test]
    fn iphone_identity_looks_real() {
        let a = DeviceInfo::random(DeviceKind::IPhone);
        assert!(a.udid.starts_with("00008030-"));
        assert_eq!(a.udid.len(), 25);
        assert!(a.udid[9..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
        assert_eq!(a.serial_number.len(), 12);
        assert!(a
            .serial_number
            .bytes()
            .all(|c| SERIAL_ALPHABET.contains(&c)));
        let imei = a.imei.clone().unwrap();
        assert_eq!(imei.len(), 15);
        assert!(luhn_valid(&imei));
        assert_eq!(a.meid.as_deref(), Some(&imei[..14]));
        assert_eq!(a.wifi_mac.len(), 17);
        let b = DeviceInfo::random(DeviceKind::IPhone);
        assert_ne!(a.udid, b.udid);
        assert_ne!(a.serial_number, b.serial_number);
    }

    #[test]
    fn mac_identity_looks_real() {
        let m = DeviceInfo::random(DeviceKind::Mac);
        assert!(uuid::Uuid::parse_str(&m.udid).is_ok());
        assert_eq!(m.udid, m.udid.to_uppercase());
        assert!(m.imei.is_none());
        assert_eq!(m.product_name, "Mac14,2");
    }

    #[test]
    fn luhn_known_value() {
        // 49015420323751 -> check digit 8 (classic IMEI example).
        assert_eq!(luhn_check_digit("49015420323751"), 8);
    }
}
