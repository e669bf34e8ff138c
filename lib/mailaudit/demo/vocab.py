"""The fixed vocabularies the demo draws from: names, domains, lists, campaigns, SMTP texts, User-Agents.

Every string here is representable in windows-1251, so a cp1251 MariaDB database holds it.
"""

from __future__ import annotations

FIRST_NAMES = (
    ("Александр", "aleksandr"), ("Алексей", "aleksey"), ("Андрей", "andrey"), ("Дмитрий", "dmitriy"),
    ("Евгений", "evgeniy"), ("Иван", "ivan"), ("Игорь", "igor"), ("Максим", "maksim"),
    ("Михаил", "mikhail"), ("Николай", "nikolay"), ("Олег", "oleg"), ("Павел", "pavel"),
    ("Сергей", "sergey"), ("Юрий", "yuriy"), ("Владимир", "vladimir"), ("Артём", "artem"),
    ("Анна", "anna"), ("Елена", "elena"), ("Ирина", "irina"), ("Мария", "mariya"),
    ("Наталья", "natalya"), ("Ольга", "olga"), ("Светлана", "svetlana"), ("Татьяна", "tatyana"),
    ("Юлия", "yuliya"), ("Екатерина", "ekaterina"), ("Ксения", "kseniya"), ("Дарья", "darya"),
    ("Виктория", "viktoriya"), ("Людмила", "lyudmila"),
)
LAST_NAMES = (
    ("Иванов", "ivanov"), ("Смирнов", "smirnov"), ("Кузнецов", "kuznetsov"), ("Попов", "popov"),
    ("Васильев", "vasilev"), ("Петров", "petrov"), ("Соколов", "sokolov"), ("Михайлов", "mikhaylov"),
    ("Новиков", "novikov"), ("Фёдоров", "fedorov"), ("Морозов", "morozov"), ("Волков", "volkov"),
    ("Алексеев", "alekseev"), ("Лебедев", "lebedev"), ("Семёнов", "semenov"), ("Егоров", "egorov"),
    ("Павлов", "pavlov"), ("Козлов", "kozlov"), ("Степанов", "stepanov"), ("Николаев", "nikolaev"),
    ("Орлов", "orlov"), ("Андреев", "andreev"), ("Макаров", "makarov"), ("Никитин", "nikitin"),
    ("Захаров", "zakharov"), ("Зайцев", "zaytsev"), ("Соловьёв", "solovev"), ("Борисов", "borisov"),
)
FEMALE_FIRST_FROM = 16
"""FIRST_NAMES[16:] are female: their Cyrillic surnames take the feminine ending -а."""

# (domain, provider label, share of clean addresses). Corporate domains take the rest.
PROVIDER_DOMAINS = (
    ("gmail.com", "gmail", 0.22),
    ("mail.ru", "mailru", 0.20),
    ("bk.ru", "mailru", 0.03), ("list.ru", "mailru", 0.025), ("inbox.ru", "mailru", 0.025),
    ("yandex.ru", "yandex", 0.18), ("ya.ru", "yandex", 0.04),
    ("icloud.com", "apple", 0.07), ("me.com", "apple", 0.02), ("mac.com", "apple", 0.01),
    ("outlook.com", "microsoft", 0.025), ("hotmail.com", "microsoft", 0.015),
    ("yahoo.com", "yahoo", 0.02),
    ("rambler.ru", "rambler", 0.03),
)
CORPORATE_DOMAINS = (
    "romashka-trade.ru", "stroymontazh-spb.ru", "vektor-group.ru", "agrokompleks-yug.ru",
    "teplolux-ural.ru", "medtekhnika-plus.ru", "logistika-sibir.ru", "uralsteel-holding.ru",
    "optovik-volga.ru", "finconsult-msk.ru", "printservis-nsk.ru", "avtodetal-kazan.ru",
    "elektroset-proekt.ru", "kamchatka-fish.ru", "baltika-trans.ru", "nord-mebel.ru",
)
CORPORATE_PROVIDER = "corporate"

TYPO_DOMAINS = (
    "gmai.com", "gmail.co", "gnail.com", "gmaill.com", "yandx.ru", "yandex.ry", "yanex.ru",
    "mail.ri", "maill.ru", "mail.rh", "iclod.com", "icloud.co", "outlok.com", "yahooo.com",
    "rambler.ry", "ramber.ru",
)
"""None is on the disposable blocklist (gmial.com and hotmial.com are: typo-squatters), so the
typo and disposable counts stay disjoint."""
DISPOSABLE_DOMAINS = (
    "mailinator.com", "yopmail.com", "guerrillamail.com", "10minutemail.com", "temp-mail.org",
    "trashmail.com", "sharklasers.com", "getnada.com", "dispostable.com", "maildrop.cc",
)
"""Each is on the ``disposable-email-domains`` blocklist (checked by the tests)."""

ROLE_LOCAL_PARTS = ("info", "sales", "support", "admin", "noreply", "office", "postmaster", "webmaster",
                    "marketing", "billing", "zakaz", "buh")

LISTS = (
    # code, NAME, share of contacts, human-open multiplier, click multiplier (per delivered row)
    ("loyal", "Постоянные покупатели", 0.15, 1.6, 1.8),
    ("site", "Подписчики сайта", 0.45, 1.0, 1.0),
    ("webinar", "Участники вебинаров", 0.25, 1.0, 1.0),
    ("cold", "Холодная база (выставка 2023)", 0.15, 0.4, 0.2),
)
"""The loyal and cold lists are weighted so that their multipliers average to 1 for opens and for
clicks. The site list is still no exact null: probabilities are capped at 0.95 and not every letter
mails every list, so its expected ratio to the rest is what the mailings' mix makes it (the truth
file lists it under ``composition``)."""
MIX_LIST = "webinar"
"""Mailed mostly by the strong letters, with no per-contact effect: a pure mix effect."""

CRM_SOURCES = (
    # SOURCE_ID, share of CRM contacts, click multiplier
    ("WEB", 0.35, 0.6), ("STORE", 0.20, 1.8), ("CALL", 0.15, 0.6), ("EMAIL", 0.12, 0.6),
    ("ADVERTISING", 0.10, 0.6), ("RECOMMENDATION", 0.08, 1.8),
)

CAMPAIGNS = (
    # NAME, code, TRACK_CLICK, utm_campaign prefix
    ("Новости магазина", "news", "Y", "news"),
    ("Акции и скидки", "promo", "Y", "promo"),
    ("Чёрная пятница", "blackfriday", "Y", "black_friday"),
    ("Вебинары и мастер-классы", "webinars", "Y", "webinar"),
    ("Новинки каталога", "catalog", "Y", "new_items"),
    ("Корпоративные новости", "corporate", "N", "corp_news"),
    ("Возвращаем клиентов", "winback", "Y", "winback"),
    ("Сезонная распродажа", "seasonal", "Y", "sale"),
)
SMS_CAMPAIGN = ("SMS-уведомления о заказах", "sms_orders")

SUBJECT_TEMPLATES = {
    "news": ("Новости магазина: {month}", "Что нового в {month_gen}", "Дайджест за {month}"),
    "promo": ("Скидки до 30% только до воскресенья", "Промокод на {month}: -15%", "Товары недели со скидкой"),
    "blackfriday": ("Чёрная пятница: скидки до 70%!", "Последний день Чёрной пятницы", "Чёрная пятница начинается завтра"),
    "webinars": ("Приглашаем на вебинар «Как выбрать оборудование»", "Запись вебинара и презентация", "Мастер-класс: ответы на вопросы"),
    "catalog": ("Новинки каталога: {month}", "Поступление новых товаров", "Вы просили — мы привезли"),
    "corporate": ("Итоги квартала и планы компании", "Новый офис и режим работы", "Компания на выставке «Иннопром»"),
    "winback": ("Мы скучаем! Ваш подарок внутри", "Давно не виделись — скидка 20%", "Вернитесь за бонусами"),
    "seasonal": ("Сезонная распродажа: -50% на всё", "Распродажа № {n}: успейте купить", "Финальные скидки сезона"),
}
MONTHS_RU = ("январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь",
             "октябрь", "ноябрь", "декабрь")
MONTHS_RU_GEN = ("январе", "феврале", "марте", "апреле", "мае", "июне", "июле", "августе",
                 "сентябре", "октябре", "ноябре", "декабре")

SHOP_HOST = "shop.example.ru"
EMAIL_FROM = "news@example.ru"
LINK_PATHS = ("/catalog/", "/catalog/new/", "/sale/", "/webinar/register/", "/about/news/",
              "/catalog/instrument/", "/catalog/sad-i-ogorod/", "/personal/cart/")

# Delivery outcomes: (dsn, remote reply text) by provider label.
HARD_BOUNCE_TEXTS = {
    "gmail": ("5.1.1", "550-5.1.1 The email account that you tried to reach does not exist. Please try "
              "double-checking the recipient's email address for typos or unnecessary spaces. "
              "https://support.google.com/mail/?p=NoSuchUser a640c23a62f3a-b7c5a1d2e3fsi123456.66 - gsmtp"),
    "microsoft": ("5.5.0", "550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). "
                  "[AM4PEPF00027A6C.eurprd04.prod.outlook.com]"),
    "yahoo": ("5.0.0", "554 delivery error: dd This user doesn't have a yahoo.com account (%s) [0] - "
              "mta1234.mail.ir2.yahoo.com"),
    "mailru": ("5.0.0", "550 Message was not accepted -- invalid mailbox.  Local mailbox %s is "
               "unavailable: user not found"),
    "yandex": ("5.7.1", "550 5.7.1 No such user!"),
    "rambler": ("5.1.1", "550 5.1.1 <%s>: Recipient address rejected: User unknown"),
    "apple": ("5.1.1", "550 5.1.1 <%s>: user does not exist"),
    "corporate": ("5.1.1", "550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual mailbox table"),
}
SOFT_BOUNCE_TEXTS = {
    "gmail": ("5.2.2", "552-5.2.2 The recipient's inbox is out of storage space. Please direct the "
              "recipient to https://support.google.com/mail/?p=OverQuotaTemp - gsmtp"),
    "mailru": ("5.2.2", "552 5.2.2 Mailbox size limit exceeded"),
    "yandex": ("5.2.2", "552 5.2.2 Mailbox size exceeded"),
    "microsoft": ("5.2.2", "552 5.2.2 STOREDRV.Deliver; mailbox full"),
    "default": ("5.2.2", "552 5.2.2 <%s>: Mailbox full, over quota"),
}
BLOCK_TEXTS = {
    "microsoft": ("5.7.1", "550 5.7.1 Unfortunately, messages from [185.12.34.56] weren't sent. Please "
                  "contact your Internet service provider since part of their network is on our block "
                  "list (S3150). You can also refer your provider to http://mail.live.com/mail/"
                  "troubleshooting.aspx#errors. [VI1EUR04FT012.eop-eur04.prod.protection.outlook.com]"),
    "gmail": ("5.7.28", "550-5.7.28 [185.12.34.56] Our system has detected an unusual rate of unsolicited "
              "mail originating from your IP address. To protect our users from spam, mail sent from "
              "your IP address has been blocked. https://support.google.com/mail/?p=UnsolicitedIPError - gsmtp"),
    "yahoo": ("5.7.9", "554 5.7.9 Message not accepted for policy reasons.  See "
              "https://postmaster.yahooinc.com/error-codes [TSS04]"),
}
DEFERRAL_TEXT = "connect to {mx}[{ip}]:25: Connection timed out"
MX_HOSTS = {
    "gmail": ("gmail-smtp-in.l.google.com", "142.250.150.27"),
    "mailru": ("mxs.mail.ru", "94.100.180.31"),
    "yandex": ("mx.yandex.ru", "77.88.21.249"),
    "apple": ("mx01.mail.icloud.com", "17.57.154.33"),
    "microsoft": ("hotmail-com.olc.protection.outlook.com", "52.101.68.17"),
    "yahoo": ("mta7.am0.yahoodns.net", "67.195.204.74"),
    "rambler": ("mx.rambler.ru", "81.19.78.100"),
    "corporate": ("mx.{domain}", "185.45.1.10"),
    "other": ("mx.{domain}", "91.200.10.20"),
}

# User-Agents of pixel loads.
UA_APPLE_PROXY = "Mozilla/5.0"
UA_GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
UA_YAHOO = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
UA_YANDEX = "Mozilla/5.0 (compatible; YandexImageResizer/2.0; +http://yandex.com/bots)"
UA_RAMBLER = "RamblerMail/6.0 (incompatible; ImageProxy/6.0)"
UA_OUTLOOK = ("Mozilla/4.0 (compatible; ms-office; MSOffice 16) Microsoft Office/16.0 "
              "(Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)")
UA_THUNDERBIRD = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0"
UA_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Mobile/15E148")
UA_BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 YaBrowser/24.12.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.39 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
)
UA_SCANNER = UA_BROWSERS[0]
"""Security gateways fetch with an ordinary browser User-Agent."""
UA_GATEWAYS = (
    UA_BROWSERS[0],
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    UA_BROWSERS[3],
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
)
"""Browser User-Agents of link-scanning gateways' pixel loads and clicks (one per scan)."""
UA_SITE_VISITORS = UA_BROWSERS + (
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
)
SITE_PATHS = ("/", "/catalog/", "/catalog/instrument/", "/sale/", "/personal/cart/", "/bitrix/admin/",
              "/favicon.ico", "/robots.txt", "/upload/iblock/3f2/banner.jpg", "/search/?q=%D0%B4%D1%80%D0%B5%D0%BB%D1%8C")
