"""Link extraction and UTM completeness in letter HTML (tracking readiness)."""

from mailaudit.analyses.inventory import _has_complete_utm, extract_links


def test_extract_links_keeps_only_web_targets():
    html = """
    <a href="https://shop.ru/sale?utm_source=bitrix&utm_medium=email&utm_campaign=nov">Sale</a>
    <A HREF='http://shop.ru/catalog'>Catalog</A>
    <a href="mailto:help@shop.ru">Write</a> <a href="#top">Top</a>
    <a href="#UNSUBSCRIBE_LINK#">Unsubscribe</a>
    <img src="https://shop.ru/logo.png">
    """
    assert extract_links(html) == [
        "https://shop.ru/sale?utm_source=bitrix&utm_medium=email&utm_campaign=nov",
        "http://shop.ru/catalog",
    ]
    assert extract_links(None) == []


def test_complete_utm_needs_source_medium_and_campaign_with_values():
    assert _has_complete_utm("https://a.ru/?utm_source=b&utm_medium=email&utm_campaign=c")
    assert not _has_complete_utm("https://a.ru/?utm_source=b&utm_medium=email")
    assert not _has_complete_utm("https://a.ru/?utm_source=b&utm_medium=&utm_campaign=c")
    assert _has_complete_utm("https://a.ru/?UTM_SOURCE=b&utm_medium=email&utm_campaign=c")
