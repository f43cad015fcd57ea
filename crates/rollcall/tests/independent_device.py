#!/usr/bin/env python3
"""A device written from PROTOCOL.md alone, knowing nothing of Rollcall's code.

Python's standard library only: the varint framing, the protobuf Packet, the MD5 signatures
and the JSON bodies are written here from the document. It authenticates over TCP, heartbeats,
receives a pushed task, pages through its persons over HTTP, downloads their photos, reports the
task's status and uploads attendance (twice: the resend must be a duplicate). It then checks
through the admin API that the record shows up once. Exit status 0 means every step conformed.

Usage: independent_device.py TCP_HOST:PORT HTTP_BASE_URL ADMIN_TOKEN FACE_JPEG
"""

import base64
import hashlib
import json
import socket
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone

TCP, HTTP, ADMIN, FACE = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3], sys.argv[4]
VERSION = "v1.0.0"
SN = "PY-INDEPENDENT-1"
BEIJING = timezone(timedelta(hours=8))

# --- ZJ-PKT-01: the Packet, field numbers and types --------------------------------------
STRING_FIELDS = {
    "version": 1, "sn": 2, "token": 3, "apicode": 4, "timeStamp": 5, "param": 6, "sign": 7,
    "accessId": 8, "accessKey": 9, "error": 11, "response": 12, "taskid": 13,
}
NUMBERS = {v: k for k, v in STRING_FIELDS.items()}


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode(packet):
    body = bytearray()
    for name, value in packet.items():
        if name in STRING_FIELDS and value:
            data = value.encode("utf-8")
            body += varint((STRING_FIELDS[name] << 3) | 2) + varint(len(data)) + data
        elif name == "success" and value:
            body += varint((10 << 3) | 0) + varint(1)
        elif name == "seq" and value:
            body += varint((14 << 3) | 0) + varint(value)
    return varint(len(body)) + bytes(body)  # ZJ-FRAME-01: varint(len) ‖ body


def read_varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def decode(body):
    packet, i = {}, 0
    while i < len(body):
        key, i = read_varint(body, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(body, i)
            if number == 10:
                packet["success"] = bool(value)
            elif number == 14:
                packet["seq"] = value
        elif wire == 2:
            n, i = read_varint(body, i)
            if number in NUMBERS:
                packet[NUMBERS[number]] = body[i:i + n].decode("utf-8")
            i += n
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return packet


class Connection:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.buf = b""

    def send(self, packet):
        self.sock.sendall(encode(packet))

    def recv(self):
        while True:
            if self.buf:
                try:
                    length, start = read_varint(self.buf, 0)
                except IndexError:
                    length, start = None, 0
                if length is not None and len(self.buf) >= start + length:
                    body = self.buf[start:start + length]
                    self.buf = self.buf[start + length:]
                    return decode(body)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk


# --- ZJ-SIGN-01, ZJ-SIGN-05: signatures ----------------------------------------------------
def md5(*parts):
    return hashlib.md5("".join(p for p in parts if p).encode("utf-8")).hexdigest()


def now_stamp():
    return datetime.now(BEIJING).strftime("%Y%m%d%H%M%S")  # ZJ-TIME-01: yyyyMMddHHmmss, Beijing


def compact(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def check(condition, what):
    if not condition:
        print("NOT CONFORMING: " + what, file=sys.stderr)
        sys.exit(1)
    print("ok: " + what)


# --- admin API (RC-PROD-08, RC-PROD-09) ----------------------------------------------------
def admin(method, path, body=None):
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(HTTP + "/api/v1" + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + ADMIN)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read()
        return json.loads(text) if text else None


def device_http(body):
    req = urllib.request.Request(HTTP + "/device/api", data=json.dumps(body).encode("utf-8"),
                                 method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        check(resp.status == 200, "HTTP device answers are status 200")
        return json.loads(resp.read())


def response_text(r):
    """The exact text a response signature covers (ZJ-SIGN-10): compact JSON, or nothing."""
    return compact(r["response"]) if "response" in r else ""


def main():
    vendor = admin("POST", "/vendors", {"name": "独立实现的厂商"})
    secret = vendor["accessSecret"]
    project = admin("POST", "/projects", {"name": "独立测试工地"})
    admin("POST", "/devices", {"sn": SN, "vendorId": vendor["id"], "projectId": project["id"],
                               "kind": "face", "direction": "in"})

    # C_AUTH over TCP (ZJ-TOKEN-01).
    conn = Connection(TCP)
    ts = now_stamp()
    conn.send({"version": VERSION, "sn": SN, "apicode": "C_AUTH", "accessId": vendor["accessId"],
               "accessKey": vendor["accessKey"], "timeStamp": ts, "seq": 1,
               "sign": md5(VERSION, SN, "C_AUTH", vendor["accessId"], vendor["accessKey"], ts,
                           secret)})
    # Binding the connection may push the device's pending roster task first: skip commands.
    def response(seq):
        while True:
            p = conn.recv()
            if p.get("apicode", "").startswith("T_") and p.get("taskid"):
                pushed.append(p)
                continue
            check(p.get("seq") == seq, "responses echo seq %d" % seq)
            return p

    pushed = []
    auth = response(1)
    check(auth.get("success") is True, "C_AUTH succeeds")
    check(auth["sign"] == md5(auth["version"], "true", auth["response"], secret),
          "C_AUTH response signed over version+success+response")
    token = json.loads(auth["response"])["token"]

    # C_HEARTBEAT (ZJ-HB-01, ZJ-HB-02).
    ts = now_stamp()
    param = compact({"deviceVersion": "py-1.0", "deviceIp": "127.0.0.1"})
    conn.send({"version": VERSION, "sn": SN, "token": token, "apicode": "C_HEARTBEAT",
               "timeStamp": ts, "param": param, "seq": 2,
               "sign": md5(VERSION, SN, token, "C_HEARTBEAT", ts, param, secret)})
    hb = response(2)
    check(hb.get("success") is True and "taskids" in json.loads(hb["response"]),
          "C_HEARTBEAT answers {taskids}")

    # Enrol a worker: the platform pushes a task to this connection (ZJ-CONN-07, ZJ-CONN-08).
    face = open(FACE, "rb").read()
    worker = admin("POST", "/workers", {"idcardNo": "11010519491231002X", "name": "李四",
                                        "facePhoto": base64.b64encode(face).decode()})
    person = worker["personId"]
    admin("POST", "/projects/%s/workers" % project["id"], {"personIds": [person]})
    deadline = time.time() + 5
    command = None
    while time.time() < deadline and command is None:
        for p in pushed:
            if p["apicode"] == "T_UPDATE_DEVICE_PERSON":
                command = p
        if command is None:
            p = conn.recv()
            if p.get("taskid"):
                pushed.append(p)
    check(command is not None, "a T_UPDATE_DEVICE_PERSON command is pushed after enrolment")
    check(command["sign"] == md5(command["version"], command["sn"], command["apicode"],
                                 command["taskid"], command["timeStamp"], command.get("param"),
                                 secret),
          "the command is signed over version+sn+apicode+taskid+timeStamp+param")
    taskid = command["taskid"]

    # Page through the task's persons over HTTP and download their photos (ZJ-PERSON-04,
    # ZJ-URL-02).
    param = compact({"currentPage": 1, "size": 10})
    r = device_http({"version": VERSION, "sn": SN, "token": token, "apicode":
                     "T_UPDATE_DEVICE_PERSON", "taskid": taskid, "param": param,
                     "sign": md5(VERSION, SN, token, taskid, "T_UPDATE_DEVICE_PERSON", param,
                                 secret)})
    check(r["success"] is True, "T_UPDATE_DEVICE_PERSON page 1")
    check(r["sign"] == md5(r["version"], "true", r["taskid"], response_text(r), secret),
          "the page is signed over version+success+taskid+response")
    page = r["response"]
    ids = [d["personId"] for d in page["data"]]
    check(ids == [person], "the page holds the enrolled person")
    url = page["data"][0]["imgUrls"][0]
    with urllib.request.urlopen(url, timeout=10) as resp:
        photo = resp.read()
    check(photo == face, "the photo downloads from its signed URL")

    # Report the task's status (ZJ-STATUS-01).
    param = compact({"task": [{"taskid": taskid, "status": 1, "failedPersons": [],
                               "failedFaces": []}], "personCount": 1, "faceCount": 1})
    r = device_http({"version": VERSION, "sn": SN, "token": token,
                     "apicode": "T_UPDATE_TASKS_STATUS", "param": param,
                     "sign": md5(VERSION, SN, token, "T_UPDATE_TASKS_STATUS", param, secret)})
    check(r["success"] is True and "response" not in r, "T_UPDATE_TASKS_STATUS acknowledged")

    # Upload attendance over TCP, signed over the param without img (form A, ZJ-SIGN-06), twice.
    record_time = int(time.time() * 1000)
    without_img = compact({"personId": person, "type": 1, "recordTime": record_time})
    img = base64.b64encode(face).decode()
    with_img = without_img[:-1] + ',"img":"' + img + '"}'
    answers = []
    for seq in (10, 11):
        ts = now_stamp()
        conn.send({"version": VERSION, "sn": SN, "token": token, "apicode": "C_SIGN_IN",
                   "timeStamp": ts, "param": with_img, "seq": seq,
                   "sign": md5(VERSION, SN, token, "C_SIGN_IN", ts, without_img, secret)})
    for seq in (10, 11):
        r = response(seq)
        check(r.get("success") is True, "C_SIGN_IN %d acknowledged" % seq)
        answers.append(json.loads(r["response"]))
    check(answers[0]["duplicate"] is False and answers[1]["duplicate"] is True,
          "the resend is a duplicate")
    check(answers[0]["recordId"] == answers[1]["recordId"], "the resend returns the same id")

    records = admin("GET", "/attendance?sn=" + SN)["records"]
    check(len(records) == 1 and records[0]["personId"] == person,
          "the record shows up once in the admin API")
    device = admin("GET", "/devices/" + SN)
    check(device["personCount"] == 1 and device["online"] is True,
          "the device is online and reports its count")
    print("CONFORMING")


main()
