"""Writes the plist-shaped seed inputs of fuzz/corpus/ (check-in and connect
messages as a device sends them, XML and binary). The DER seeds are copies
of crates/protocol/tests/fixtures. Run from the repository root."""
import functools, os, plistlib

UDID = "00008030-001A2B3C4D5E802E"
checkins = {
    "authenticate": {"MessageType": "Authenticate", "UDID": UDID, "Topic": "com.apple.mgmt.External.1",
                     "SerialNumber": "F2LXJ0Q1HG7F", "Model": "iPhone14,2", "ModelName": "iPhone",
                     "DeviceName": "Taro's iPhone", "OSVersion": "17.5", "BuildVersion": "21F79",
                     "ProductName": "iPhone14,2"},
    "token_update": {"MessageType": "TokenUpdate", "UDID": UDID, "Topic": "com.apple.mgmt.External.1",
                     "Token": b"\x01" * 32, "PushMagic": "5E1B0A6B-0D6B-4C8E-9E1B-2D1F3C4B5A69",
                     "UnlockToken": b"\x02" * 64, "AwaitingConfiguration": False},
    "checkout": {"MessageType": "CheckOut", "UDID": UDID},
    "user_authenticate": {"MessageType": "UserAuthenticate", "UDID": UDID,
                          "UserID": "A1B2C3D4-0000-0000-0000-000000000001", "UserShortName": "taro",
                          "UserLongName": "Taro Yamada"},
    "set_bootstrap": {"MessageType": "SetBootstrapToken", "UDID": UDID, "BootstrapToken": b"\x03" * 48},
    "unknown": {"MessageType": "DeclarativeManagement", "UDID": UDID, "Endpoint": "status",
                "Data": b'{"StatusItems":{}}'},
}
connects = {
    "idle": {"UDID": UDID, "Status": "Idle"},
    "ack_device_information": {"UDID": UDID, "Status": "Acknowledged",
        "CommandUUID": "6a1b6e4c-7c2f-4d7e-9b1a-0c6f3e2d1a4b",
        "QueryResponses": {"DeviceName": "Taro's iPhone", "OSVersion": "17.5", "SerialNumber": "F2LXJ0Q1HG7F",
                           "BatteryLevel": 0.82, "IsSupervised": True, "WiFiMAC": "a4:83:e7:00:00:01"}},
    "ack_apps": {"UDID": UDID, "Status": "Acknowledged", "CommandUUID": "7b2c7f5d-8d3f-4e8f-ac2b-1d7f4e3e2b5c",
        "InstalledApplicationList": [{"Identifier": f"com.example.app{i}", "Name": f"App {i}",
                                      "ShortVersion": "1.0", "BundleSize": 1024 * i} for i in range(20)]},
    "error": {"UDID": UDID, "Status": "Error", "CommandUUID": "8c3d806e-9e40-4f90-bd3c-2e805f4f3c6d",
              "ErrorChain": [{"ErrorCode": 12021, "ErrorDomain": "MCMDMErrorDomain",
                              "LocalizedDescription": "Profile not found", "USEnglishDescription": "x"}]},
    "not_now": {"UDID": UDID, "Status": "NotNow", "CommandUUID": "9d4e917f-af51-4fa1-8e4d-3f916f5f4d7e"},
    "user_channel": {"UDID": UDID, "UserID": "A1B2C3D4-0000-0000-0000-000000000001", "Status": "Idle"},
}

def write(folder, name, value):
    for fmt, ext in ((plistlib.FMT_XML, "xml"), (plistlib.FMT_BINARY, "bplist")):
        with open(os.path.join("fuzz/corpus", folder, f"{name}.{ext}"), "wb") as f:
            f.write(plistlib.dumps(value, fmt=fmt))

for name, v in checkins.items():
    write("checkin", name, v)
    write("plist", "checkin-" + name, v)
for name, v in connects.items():
    write("connect", name, v)
    write("plist", "connect-" + name, v)
write("plist", "mixed", {"A": [1, 2.5, True, b"\x00", "s", {"k": []}], "D": plistlib.UID(3) if False else 3})

# Hostile shapes the decoder must refuse (small, so the fuzzer mutates them).
with open("fuzz/corpus/plist/deep.xml", "wb") as f:
    f.write(b"<plist>" + b"<array>" * 100 + b"</array>" * 100 + b"</plist>")
deep_bin = plistlib.dumps(functools.reduce(lambda acc, _: [acc], range(30), []), fmt=plistlib.FMT_BINARY)
with open("fuzz/corpus/plist/deep.bplist", "wb") as f:
    f.write(deep_bin)
