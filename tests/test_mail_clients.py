"""Classification of real mail-client User-Agents and IPs (strings from uap-core / device-detector fixtures)."""

from __future__ import annotations

import pytest

from mailaudit.analyses.mail_clients import (
    APPLE_PROXY,
    CLIENT,
    GMAIL_PROXY,
    SCANNER,
    UNKNOWN,
    YAHOO_PROXY,
    PROXY,
    IpRanges,
    MailClientClassifier,
    classify_user_agent,
)
from mailaudit.bitrix.codes import MAIL_AGENT_CLIENT

REAL_USER_AGENTS = [
    # (User-Agent, hit class, client)
    ("Mozilla/5.0", APPLE_PROXY, "apple"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
     CLIENT, "apple"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Mobile/15E148", CLIENT, "apple"),
    ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
     CLIENT, "apple"),
    ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
     GMAIL_PROXY, "gmail"),
    ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", YAHOO_PROXY, "yahoo"),
    ("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)", CLIENT, "outlook"),
    ("Mozilla/4.0 (compatible; ms-office; MSOffice 16)", CLIENT, "outlook"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0", CLIENT, "thunderbird"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:102.0) Gecko/20100101 Thunderbird/102.15.1",
     CLIENT, "thunderbird"),
    ("Mozilla/5.0 (compatible; YandexImageResizer/2.0; +http://yandex.com/bots)", PROXY, "yandex"),  # an image proxy (was client)
    ("RamblerMail/6.0 (incompatible; ImageProxy/6.0)", PROXY, "rambler"),  # an image proxy (was client)
    ("Mozilla/5.0 (Linux; Android 13; SM-S918B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36", CLIENT, "android"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36", CLIENT, "webmail"),
    ("python-requests/2.31.0", SCANNER, "scanner"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/119.0.0.0 "
     "Safari/537.36", SCANNER, "scanner"),
    ("Barracuda Sentinel (EE)", SCANNER, "scanner"),
    ("-", UNKNOWN, "unknown"),
    ("", UNKNOWN, "unknown"),
]


@pytest.mark.parametrize("user_agent, hit_class, client", REAL_USER_AGENTS)
def test_real_user_agents(user_agent, hit_class, client):
    found = classify_user_agent(user_agent)
    assert (found.hit_class, found.client) == (hit_class, client)


def test_only_apple_proxy_and_scanners_are_machine_opens():
    assert classify_user_agent("Mozilla/5.0").machine
    assert classify_user_agent("python-requests/2.31.0").machine
    gmail = classify_user_agent("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)")
    assert not gmail.machine   # Gmail's proxy loads on a real open (mautic#16069)


def test_bare_mozilla_with_extra_text_is_not_the_apple_proxy():
    assert classify_user_agent("Mozilla/5.0 (compatible)").hit_class != APPLE_PROXY


def test_client_labels_match_the_database_agent_labels():
    labels = {c.client for c in map(classify_user_agent, (ua for ua, _, _ in REAL_USER_AGENTS))}
    assert {"apple", "gmail", "outlook", "thunderbird", "yandex"} <= set(MAIL_AGENT_CLIENT.values())
    assert {"apple", "gmail", "outlook", "thunderbird", "yandex"} <= labels


def test_apple_egress_ranges_separate_proxy_from_mail_app(tmp_path):
    csv = tmp_path / "egress-ip-ranges.csv"
    csv.write_text("172.224.226.0/27,GB,GB-EN,London,\n2a02:26f7:b3c0:4000::/64,US,US-CA,Los Angeles,\n")
    classifier = MailClientClassifier(apple_ranges=IpRanges.from_apple_csv(csv))
    assert classifier.classify("Mozilla/5.0", "172.224.226.17").hit_class == APPLE_PROXY
    assert classifier.classify("Mozilla/5.0", "2a02:26f7:b3c0:4000::1").hit_class == APPLE_PROXY
    mail_app = classifier.classify("Mozilla/5.0", "95.31.4.7")
    assert (mail_app.hit_class, mail_app.client, mail_app.machine) == (CLIENT, "apple", False)
    # without a snapshot every bare Mozilla/5.0 is the proxy
    assert MailClientClassifier().classify("Mozilla/5.0", "95.31.4.7").hit_class == APPLE_PROXY


def test_gateway_networks_are_scanners_whatever_the_user_agent():
    chrome = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36")
    classifier = MailClientClassifier()
    assert classifier.classify(chrome, "40.107.22.5").hit_class == SCANNER
    assert classifier.classify(chrome, "52.101.0.9").hit_class == SCANNER
    assert classifier.classify(chrome, "85.140.1.1").hit_class == CLIENT
    assert classifier.classify(chrome, "not-an-ip").hit_class == CLIENT


def test_ip_ranges_merge_and_bounds():
    ranges = IpRanges(["10.0.0.0/24", "10.0.1.0/24", "192.168.0.0/30"])
    assert ranges.size == 2
    assert "10.0.1.255" in ranges and "10.0.2.0" not in ranges
    assert "192.168.0.3" in ranges and "192.168.0.4" not in ranges
