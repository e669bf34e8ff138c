"""Access-log reading: both line formats, gzip and rotation, and Bitrix tracking-tag decoding."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import datetime
from urllib.parse import quote

import pytest

from mailaudit.sources.access_logs import (
    CLICK,
    OPEN,
    ScanStats,
    decode_tag,
    iter_tracking_hits,
    order_rotated,
    parse_time_local,
)


def php_urlencode(text: str) -> str:
    """PHP urlencode(): '=' -> %3D, '+' -> %2B, '/' -> %2F (what Bitrix puts in the pixel URL)."""
    return quote(text, safe="")


def sender_tag(recipient_id: int, module: str = "sender") -> str:
    payload = base64.b64encode(json.dumps({"RECIPIENT_ID": recipient_id}).encode()).decode()
    return php_urlencode(f"{module}.{payload}")


APPLE_MPP = "Mozilla/5.0"
IOS_MAIL = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Mobile/15E148")


def combined(ip, when, target, ua, status=200):
    return f'{ip} - - [{when}] "GET {target} HTTP/1.1" {status} 43 "-" "{ua}"\n'


def bitrixvm(ip, when, target, ua, status=200):
    return (f'{ip} - - [{when} - 0.012] {status} "GET {target} HTTP/1.1" 43 "-" "{ua}" "-"\n')


# --- tag decoding -------------------------------------------------------------------------------

def test_tag_with_percent_encoded_padding_decodes():
    # {"RECIPIENT_ID":12} base64-encodes with '=' padding, which PHP urlencode turns into %3D
    raw = base64.b64encode(b'{"RECIPIENT_ID":12}').decode()
    assert raw.endswith("=")
    assert decode_tag(php_urlencode("sender." + raw)) == ("sender", 12)


def test_tag_with_missing_padding_decodes():
    raw = base64.b64encode(b'{"RECIPIENT_ID":12}').decode().rstrip("=")
    assert decode_tag("sender." + raw) == ("sender", 12)


def test_plus_in_base64_is_not_turned_into_a_space():
    # a payload whose base64 holds a '+': a decoder that maps '+' to ' ' would fail on it
    raw = base64.b64encode(json.dumps({"RECIPIENT_ID": 42, "x": " \u00be"}, ensure_ascii=False).encode()).decode()
    assert "+" in raw
    assert decode_tag("sender." + raw) == ("sender", 42)                  # raw '+' in the log
    assert decode_tag(php_urlencode("sender." + raw)) == ("sender", 42)   # %2B


def test_doubly_encoded_padding_decodes():
    raw = base64.b64encode(b'{"RECIPIENT_ID":7}').decode()
    assert decode_tag(php_urlencode(php_urlencode("sender." + raw))) == ("sender", 7)


def test_only_the_first_dot_splits_module_and_payload():
    assert decode_tag(sender_tag(99)) == ("sender", 99)
    module, rid = decode_tag("sender.eyJSRUNJUElFTlRfSUQiOjF9.extra")
    assert module == "sender" and rid is None


@pytest.mark.parametrize("garbage", [
    "",                                  # empty
    "sender",                            # no payload
    "sender.!!!notbase64",               # not base64
    "sender." + base64.b64encode(b"not json").decode(),
    "sender." + base64.b64encode(b'{"OTHER": 1}').decode(),
    "sender." + base64.b64encode(b'{"RECIPIENT_ID": "abc"}').decode(),
    "sender." + base64.b64encode(b'[1, 2]').decode(),
    "sender." + base64.b64encode(b'{"RECIPIENT_ID": -5}').decode(),
])
def test_garbage_tags_decode_to_no_recipient(garbage):
    assert decode_tag(php_urlencode(garbage))[1] is None


def test_crm_module_is_reported_as_crm():
    assert decode_tag(sender_tag(5, module="crm")) == ("crm", 5)


# --- line formats -------------------------------------------------------------------------------

def test_time_local_keeps_server_local_time():
    assert parse_time_local("01/Mar/2026:09:05:07 +0300") == datetime(2026, 3, 1, 9, 5, 7)


def test_both_formats_every_endpoint_and_counts(tmp_path):
    when = "10/Feb/2026:12:00:01 +0300"
    lines = [
        combined("17.58.1.1", when, f"/bitrix/tools/track_mail_read.php?tag={sender_tag(1)}", APPLE_MPP),
        bitrixvm("10.0.0.2", when, f"/pub/mail/read.php?tag={sender_tag(2)}", IOS_MAIL),
        combined("10.0.0.3", when,
                 f"/bitrix/tools/track_mail_click.php?tag={sender_tag(3)}&url=https%3A%2F%2Fshop.example%2F&sign=ab12",
                 IOS_MAIL),
        bitrixvm("10.0.0.4", when, f"/pub/mail/click.php?url=x&tag={sender_tag(4)}&sign=cd", IOS_MAIL),
        combined("10.0.0.5", when, f"/pub/mail/read.php?tag={sender_tag(5, 'crm')}", IOS_MAIL),
        combined("10.0.0.6", when, "/pub/mail/read.php?tag=sender.%%%garbage", IOS_MAIL),
        combined("10.0.0.7", when, "/pub/mail/read.php", IOS_MAIL),            # no tag at all
        combined("10.0.0.8", when, f"/pub/mail/read.php?tag={sender_tag(8)}", IOS_MAIL, status=404),
        combined("10.0.0.9", when, "/catalog/index.php", IOS_MAIL),             # ordinary page
        "garbled line mentioning /pub/mail/read.php?tag=x\n",
    ]
    log = tmp_path / "access.log"
    log.write_text("".join(lines))
    stats = ScanStats()
    hits = list(iter_tracking_hits([log], stats))
    assert [(h.kind, h.recipient_id) for h in hits] == [(OPEN, 1), (OPEN, 2), (CLICK, 3), (CLICK, 4)]
    assert hits[0].ip == "17.58.1.1" and hits[0].user_agent == APPLE_MPP
    assert hits[1].user_agent == IOS_MAIL and hits[1].time == datetime(2026, 2, 10, 12, 0, 1)
    assert stats.crm_hits == 1
    assert stats.garbage_tags == 2
    assert stats.failed_requests == 1
    assert stats.unparsed_lines == 1
    assert stats.lines == len(lines)
    assert stats.as_dict()["sender_opens"] == 2 and stats.as_dict()["sender_clicks"] == 2


def test_gzip_and_rotated_files_are_read_oldest_first(tmp_path):
    def write(name, rid, day, compress):
        line = combined("1.2.3.4", f"{day:02d}/Jan/2026:10:00:00 +0000",
                        f"/pub/mail/read.php?tag={sender_tag(rid)}", APPLE_MPP)
        path = tmp_path / name
        if compress:
            with gzip.open(path, "wt") as fh:
                fh.write(line)
        else:
            path.write_text(line)
        return path

    files = [write("access.log", 3, 3, False), write("access.log.1", 2, 2, False),
             write("access.log.2.gz", 1, 1, True)]
    assert [p.name for p in order_rotated(files)] == ["access.log.2.gz", "access.log.1", "access.log"]
    hits = list(iter_tracking_hits(files))
    assert [h.recipient_id for h in hits] == [1, 2, 3]


def test_dateext_rotation_sorts_by_date(tmp_path):
    names = ["access.log", "access.log-20260301.gz", "access.log-20260201.gz"]
    assert [p.name for p in order_rotated(tmp_path / n for n in names)] == [
        "access.log-20260201.gz", "access.log-20260301.gz", "access.log"]


def test_custom_read_link_path(tmp_path):
    log = tmp_path / "access.log"
    log.write_text(combined("1.1.1.1", "01/Jan/2026:00:00:00 +0000",
                            f"/local/px.php?tag={sender_tag(11)}", APPLE_MPP))
    assert list(iter_tracking_hits([log])) == []
    hits = list(iter_tracking_hits([log], open_paths=("/local/px.php",)))
    assert [h.recipient_id for h in hits] == [11]
