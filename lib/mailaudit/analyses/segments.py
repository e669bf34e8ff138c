"""Segment comparisons: every rate with its interval, segments compared with the rest of their
dimension within the same postings, p-values adjusted across the whole table.

Definitions (period = sends whose ``sent_at`` is in [period start, period end]; the words delivered,
attempted, e-mail contact, provider and mail client are the model's, see model/sql/):

- ``delivered``: delivered sends in the period.
- ``open_rate``: delivered sends opened ÷ delivered sends. Opened = the recipient's IS_READ flag,
  which Bitrix sets with the first read row (sender 15.x has no flag: there, a read row); machine
  opens (Apple MPP) included.
- ``click_rate``: delivered sends a person clicked (IS_CLICK, else a click row; a send whose every
  click row is a machine's -- the model's ``machine_clicks``: security gateways, link scanners -- is not
  clicked) ÷ delivered sends.
- ``ctor`` (click-to-open): opened sends that also have a person's click ÷ opened sends.
- ``unsub_rate``: delivered sends unsubscribed (IS_UNSUB, else an unsubscribe row) ÷ delivered sends.
- ``complaint_rate``: delivered sends that drew a spam complaint ÷ delivered sends. A complaint
  carries no posting: each e-mail complaint dated before the period end is attributed to the
  complaining contact's latest delivered send at or before it.
- ``error_rate``: attempted sends not delivered ÷ attempted sends.

All rates are fractions. Segments are properties of the contact (address book, mailbox provider,
CRM source, tenure at period end, mail client, custom column), so a comparison is always between
two disjoint sets of contacts, and the contact is the independent unit of every interval and test.

Counting happens in the snapshot's model (DuckDB): the attempted sends of this period and the
previous one are gathered once with their evidence, and summed per contact (`SegmentSends`); then
sends are grouped by posting × month × profile (a contact's segment in every dimension whose
segments do not overlap) and per-contact sums by profile (for cluster-robust variances). Each
dimension's counts are sums over profiles; only these aggregates reach pandas. Sends whose contact
row is gone, and contacts that are not e-mail contacts, are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from mailaudit.analyses import opens, stats
from mailaudit.model import Model
from mailaudit.narrative.language import _
from mailaudit.period import Period

BUILTIN_DIMENSIONS = ("list", "provider", "crm_source", "tenure", "client")
RATE_METRICS = ("open_rate", "click_rate", "ctor", "unsub_rate", "complaint_rate", "error_rate")
"""Metrics with a per-posting numerator and denominator: shown with intervals and tested."""

TENURE_BANDS = ("<1y", "1-2y", "2-3y", "3y+")
"""Contact age at the period end (from b_sender_contact.DATE_INSERT) in 365-day years."""
NO_SOURCE = "(no source)"
EMPTY_VALUE = "(empty)"
UNKNOWN = "unknown"

# metric -> (per-contact event count, per-contact denominator, per-contact expected events)
_METRIC_COLUMNS = {
    "open_rate": ("opened", "delivered", "expected_opened"),
    "click_rate": ("clicked", "delivered", "expected_clicked"),
    "ctor": ("clicked_after_open", "opened", "expected_clicked_after_open"),
    "unsub_rate": ("unsubscribed", "delivered", "expected_unsubscribed"),
    "complaint_rate": ("complaints", "delivered", "expected_complaints"),
    "error_rate": ("errors", "attempted", "expected_errors"),
}
# metric -> (events column, trials column) of the posting × segment counts
_POSTING_COLUMNS = {
    "open_rate": ("opened", "delivered"),
    "click_rate": ("clicked", "delivered"),
    "ctor": ("clicked_after_open", "opened"),
    "unsub_rate": ("unsubscribed", "delivered"),
    "complaint_rate": ("complaints", "delivered"),
    "error_rate": ("errors", "attempted"),
}
_VERSUS = {
    "list": "rest of list",
    "provider": "other providers",
    "crm_source": "other CRM sources",
    "tenure": "other tenure bands",
    "client": "other mail clients",
}


class DimensionError(ValueError):
    """A dimension that cannot be built from this snapshot (the message names no data values)."""


@dataclass
class SegmentSettings:
    """What to compare: ``params.segments`` of the parameter file."""

    dimensions: list[str] = field(default_factory=lambda: list(BUILTIN_DIMENSIONS))
    custom: list[dict] = field(default_factory=list)
    min_delivered: int = 500
    correction: str = "holm"
    alpha: float = 0.05
    human_opens: bool = True      # the report estimates each segment's human open rate

    @classmethod
    def from_params(cls, segments: dict) -> "SegmentSettings":
        return cls(dimensions=list(segments["dimensions"]), custom=list(segments.get("custom") or []),
                   min_delivered=int(segments["min_delivered"]), correction=segments["correction"],
                   human_opens=bool(segments["human_opens"]))


@dataclass
class SegmentResult:
    """Tidy tables and the figures for summary.json's ``segments`` section."""

    metrics: pd.DataFrame          # one row per dimension × segment
    differences: pd.DataFrame      # one row per dimension × segment × tested metric
    monthly: pd.DataFrame          # dimension × segment × month rates
    postings: pd.DataFrame         # dimension × posting × segment counts
    figures: dict
    notes: list[str]


# --- dimensions: which e-mail contacts are in which segment ------------------------------------------

def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_timestamp(value: datetime) -> str:
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"


@dataclass
class Dimension:
    """A segment dimension: `members` is SQL on the model selecting (contact_id, segment) of the
    e-mail contacts inside it; a contact in no segment (not in the CRM, in no address book) has no row."""

    name: str
    members: str
    one_per_contact: bool = False     # by construction at most one segment per contact


def _of_email_contacts(segment: str, name: str, one_per_contact: bool = True) -> Dimension:
    """A dimension whose segment is an expression over the `contacts` relation."""
    return Dimension(name, f"SELECT contact_id, {segment} AS segment FROM contacts WHERE is_email_contact",
                     one_per_contact)


def tenure_cutoffs(period: Period) -> list[datetime]:
    """Instants splitting contacts' created_at into TENURE_BANDS: age measured at the period end
    (midnight after its last day) in 365-day years; a contact exactly 365 days old is in 1-2y."""
    return [period.end_exclusive - timedelta(days=365 * years) for years in (1, 2, 3)]


def segment_dimension(model: Model, dimension: str, period: Period, custom: dict | None = None) -> Dimension:
    """The Dimension for a built-in name (list, provider, crm_source, tenure, client) or a custom
    {table, column, name}. Raises DimensionError when this snapshot cannot provide it."""
    if custom is not None:
        return _custom_dimension(model, custom)
    if dimension == "list":
        _need(model, "b_sender_list", "b_sender_contact_list")
        # a link to an address book that no longer exists puts the contact in no segment
        return Dimension(dimension, f"""
            SELECT l.contact_id, coalesce(l.list_name, {_sql_text(EMPTY_VALUE)}) AS segment
            FROM contact_lists l
            JOIN contacts c ON c.contact_id = l.contact_id AND c.is_email_contact
            WHERE l.list_id IN (SELECT ID FROM raw.b_sender_list)""")
    if dimension == "provider":
        return _of_email_contacts("provider", dimension)
    if dimension == "tenure":
        if "DATE_INSERT" not in model.columns("b_sender_contact"):
            raise DimensionError(_("b_sender_contact has no DATE_INSERT column"))
        one, two, three = (_sql_timestamp(cutoff) for cutoff in tenure_cutoffs(period))
        return _of_email_contacts(
            f"CASE WHEN created_at IS NULL THEN {_sql_text(UNKNOWN)} "
            f"WHEN created_at > {one} THEN {_sql_text(TENURE_BANDS[0])} "
            f"WHEN created_at > {two} THEN {_sql_text(TENURE_BANDS[1])} "
            f"WHEN created_at > {three} THEN {_sql_text(TENURE_BANDS[2])} "
            f"ELSE {_sql_text(TENURE_BANDS[3])} END", dimension)
    if dimension == "client":
        if "AGENT" not in model.columns("b_sender_contact"):
            raise DimensionError(_("b_sender_contact has no AGENT column (legacy layout)"))
        return _of_email_contacts("client", dimension)
    if dimension == "crm_source":
        return _crm_source_dimension(model)
    raise DimensionError(f"unknown dimension {dimension!r}; dimensions: {', '.join(BUILTIN_DIMENSIONS)}")


def _need(model: Model, *tables: str) -> None:
    missing = [t for t in tables if not model.has(t)]
    if missing:
        raise DimensionError(_("missing table(s) {tables}").format(tables=", ".join(missing)))


def _crm_source_dimension(model: Model) -> Dimension:
    """The SOURCE_ID of the CRM contacts with the contact's address (the model's crm_emails); several
    CRM contacts: the smallest SOURCE_ID. Contacts that are no CRM contact's address are outside."""
    _need(model, "b_crm_contact", "b_crm_field_multi")
    return Dimension("crm_source", f"""
        SELECT e.contact_id, coalesce(min(cc.source_id), {_sql_text(NO_SOURCE)}) AS segment
        FROM crm_emails e
        JOIN crm_contacts cc ON cc.crm_contact_id = e.crm_contact_id
        WHERE e.contact_id IS NOT NULL
        GROUP BY e.contact_id""", one_per_contact=True)


def _custom_dimension(model: Model, custom: dict) -> Dimension:
    """A custom dimension: a column the snapshot read for it (segments.custom), joined to the contact
    by its ID (b_sender_contact.ID, or CONTACT_ID of any other table). No free SQL: names are checked
    against the snapshot's manifest."""
    name, table, column = custom["name"], custom["table"], custom["column"].upper()
    _snapshot_column(model, name, table, column, f"table {table} has no column {column}")
    value = f"coalesce(CAST(r.{_sql_name(column)} AS VARCHAR), {_sql_text(EMPTY_VALUE)})"
    if table == "b_sender_contact":
        return Dimension(name, f"""
            SELECT c.contact_id, {value} AS segment
            FROM raw.b_sender_contact r JOIN contacts c ON c.contact_id = r.ID AND c.is_email_contact""",
                         one_per_contact=True)
    _snapshot_column(model, name, table, "CONTACT_ID", f"table {table} has no CONTACT_ID column to join contacts by")
    return Dimension(name, f"""
        SELECT DISTINCT c.contact_id, {value} AS segment
        FROM raw.{_sql_name(table)} r JOIN contacts c ON c.contact_id = r.CONTACT_ID AND c.is_email_contact""")


def _snapshot_column(model: Model, name: str, table: str, column: str, lacks: str) -> None:
    """Raise DimensionError unless the snapshot holds `table`.`column`: the source lacks it (`lacks`
    says so), or the snapshot was made without this custom dimension."""
    where = f"custom dimension {name!r}: "
    entry = model.manifest["tables"].get(table)
    if entry is not None and column in entry.get("columns", []):
        return
    if entry is not None and column in entry.get("missing_columns", []):
        raise DimensionError(where + lacks)
    if entry is None and table in model.manifest.get("absent_tables", []):
        raise DimensionError(where + f"table {table} is not a known Bitrix table in this database")
    raise DimensionError(where + f"the snapshot has no {table}.{column}: make a new snapshot with this "
                         "dimension in segments.custom (mailaudit snapshot --params FILE)")


def membership(model: Model, dimension: Dimension) -> pd.DataFrame:
    """(contact_id, segment) of the e-mail contacts inside the dimension, segments labelled as shown."""
    members = model.sql(dimension.members)
    return members.assign(segment=_labels(members["segment"]))


def _everyone_in(dimension: Dimension) -> Dimension:
    """A one-segment dimension ("all") holding each member of `dimension` once."""
    return Dimension(dimension.name, f"SELECT DISTINCT contact_id, 'all' AS segment FROM ({dimension.members})",
                     one_per_contact=True)


def _is_partition(model: Model, dimension: Dimension) -> bool:
    """True when every contact is in at most one segment of the dimension (a contact-level query, run
    only for address books and custom columns of other tables: the other dimensions are so by construction)."""
    if dimension.one_per_contact:
        return True
    rows, contacts = model.con.execute(
        f"SELECT count(*), count(DISTINCT contact_id) FROM ({dimension.members})").fetchone()
    return rows == contacts


# --- counting -----------------------------------------------------------------------------------------

_COUNT_COLUMNS = ("delivered", "attempted", "errors", "opened", "clicked", "clicked_after_open", "unsubscribed",
                  "complaints")

_EVIDENCE = {
    "opened": ("IS_READ", "s.read_flag", "s.reads > 0"),
    "clicked": ("IS_CLICK", "s.click_flag", "s.clicks > 0"),
    "unsubscribed": ("IS_UNSUB", "s.unsub_flag", "s.unsubscribed_at IS NOT NULL"),
}
"""event -> (recipient flag column, the send's flag, the send's tracking rows). Bitrix sets the
recipient's own flag with the first read, click or unsubscribe row, so where the source has the flag
it is the evidence; sender 15.x has no such flags: there, the tracking rows are."""


PERSON_CLICKED = "NOT (s.clicks > 0 AND s.human_clicks = 0)"
"""A send's click evidence is a person's unless every click row of it is a machine click."""


def complaints_recorded(model: Model) -> bool:
    """Whether complaints can be tied to contacts: b_sender_abuse with its CONTACT_ID column."""
    return model.has("b_sender_abuse") and "CONTACT_ID" in model.columns("b_sender_abuse")


def complained_sends_sql(until: datetime) -> str:
    """SQL selecting (recipient_id) of the sends that drew a complaint: each e-mail complaint dated
    before `until` goes to its contact's latest delivered send at or before the complaint (the largest
    recipient_id among same-second sends)."""
    return f"""
        SELECT DISTINCT recipient_id FROM (
            SELECT s.recipient_id,
                   row_number() OVER (PARTITION BY q.complaint_id ORDER BY s.sent_at DESC, s.recipient_id DESC) AS nth
            FROM complaints q
            JOIN sends s ON s.contact_id = q.contact_id AND s.delivered AND s.sent_at <= q.complained_at
            WHERE q.is_email AND q.complained_at < {_sql_timestamp(until)}
        ) WHERE nth = 1"""


_RATE_GRID = 2 ** 40
"""Posting rates are rounded to multiples of 2^-40 (about 1e-12): a contact's expected events are then
sums of multiples of 2^-40 below 2^13 (8,192 sends a contact in one period), which a double holds
exactly, so they come out the same whatever order the engine's threads add them in."""
_EXPECTED = "DECIMAL(38, 12)"
"""Expected events summed over contacts in fixed point, exactly, for the same reason (their squares keep
24 decimals and 14 integer digits: enough for 10^7 contacts of 10^3 sends each)."""
_COUNT_SUMS = ", ".join(f"sum(r.{c})::BIGINT AS {c}" for c in _COUNT_COLUMNS)


class SegmentSends:
    """The attempted sends of e-mail contacts in a period and the one before it, with their evidence
    (delivered, error, opened, clicked, unsubscribed, complained of), and each contact's sums in the
    period: gathered once into temporary tables of the model's connection, then counted by the segments
    of any dimensions. Use as a context manager: the tables are dropped on exit."""

    SENDS, CONTACTS, PROFILES = "_segment_sends", "_segment_contacts", "_segment_profiles"

    def __init__(self, model: Model, period: Period, previous: Period, complaints_known: bool):
        self.model, self.period, self.previous, self.complaints_known = model, period, previous, complaints_known

    def __enter__(self) -> "SegmentSends":
        columns = self.model.columns("b_sender_posting_recipient")
        evidence = {event: f"coalesce({flag}, false)" if column in columns else tracked
                    for event, (column, flag, tracked) in _EVIDENCE.items()}
        complained = (complained_sends_sql(self.period.end_exclusive) if self.complaints_known
                      else "SELECT NULL::BIGINT AS recipient_id WHERE false")
        self.model.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {self.SENDS} AS
            WITH complained AS ({complained})
            SELECT s.posting_id, s.contact_id, date_trunc('month', s.sent_at)::DATE AS month,
                   s.sent_at >= {_sql_timestamp(self.period.start_dt)} AS current,
                   s.delivered::UTINYINT AS delivered,
                   (NOT s.delivered)::UTINYINT AS errors,
                   (s.delivered AND {evidence['opened']})::UTINYINT AS opened,
                   (s.delivered AND {evidence['clicked']} AND {PERSON_CLICKED})::UTINYINT AS clicked,
                   (s.delivered AND {evidence['opened']} AND {evidence['clicked']} AND {PERSON_CLICKED})::UTINYINT
                       AS clicked_after_open,
                   (s.delivered AND {evidence['unsubscribed']})::UTINYINT AS unsubscribed,
                   (s.delivered AND k.recipient_id IS NOT NULL)::UTINYINT AS complaints,
                   1::UTINYINT AS attempted
            FROM sends s
            JOIN contacts c ON c.contact_id = s.contact_id AND c.is_email_contact
            LEFT JOIN complained k ON k.recipient_id = s.recipient_id
            WHERE s.attempted AND s.sent_at >= {_sql_timestamp(self.previous.start_dt)}
              AND s.sent_at < {_sql_timestamp(self.period.end_exclusive)}
            ORDER BY s.contact_id   -- each contact's sends side by side: summing them per contact is 3x faster""")
        # per contact: the period's counts, and the events expected under the posting-only model (each
        # send weighted by its posting's overall rate)
        rates = ", ".join(f"round(coalesce(sum({events}) / nullif(sum({trials}), 0), 0) * {_RATE_GRID}) / {_RATE_GRID}"
                          f" AS {metric}" for metric, (events, trials) in _POSTING_COLUMNS.items())
        expected = ", ".join(f"sum(r.{_POSTING_COLUMNS[metric][1]} * p.{metric}) AS {column}"
                             for metric, (_events, _trials, column) in _METRIC_COLUMNS.items())
        self.model.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {self.CONTACTS} AS
            WITH rows AS (SELECT * FROM {self.SENDS} WHERE current),
            posting_rate AS (SELECT posting_id, {rates} FROM rows GROUP BY posting_id)
            SELECT r.contact_id, {_COUNT_SUMS}, {expected}
            FROM rows r JOIN posting_rate p ON p.posting_id = r.posting_id
            GROUP BY r.contact_id""")
        return self

    def __exit__(self, *exc) -> None:
        for table in (self.PROFILES, self.CONTACTS, self.SENDS):
            self.model.con.execute(f"DROP TABLE IF EXISTS {table}")

    def count(self, dimensions: list[Dimension]) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
        """For each dimension: its sends by posting × send month × period ("current", "previous") ×
        segment (_COUNT_COLUMNS), and its contact sums by segment (`_contact_sums_sql`).

        Contacts are first put in profiles -- their segment in each of `dimensions` -- so that sends are
        grouped once, by posting × month × profile, however many dimensions are counted. Give dimensions
        whose segments do not overlap together, and a dimension with overlapping segments alone: a contact
        in two of its segments then has two profiles, and counts in each.
        """
        if not dimensions:
            return []
        labels = [f"s{i}" for i in range(len(dimensions))]
        joins = " ".join(f"LEFT JOIN ({d.members}) d{i} ON d{i}.contact_id = k.contact_id"
                         for i, d in enumerate(dimensions))
        self.model.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {self.PROFILES} AS
            WITH k AS (SELECT contact_id FROM {self.CONTACTS}
                       UNION SELECT contact_id FROM {self.SENDS} WHERE NOT current),
            segments AS (SELECT k.contact_id, {', '.join(f'd{i}.segment AS {s}' for i, s in enumerate(labels))}
                         FROM k {joins}),
            profiles AS (SELECT *, row_number() OVER (ORDER BY {', '.join(labels)}) AS profile
                         FROM (SELECT DISTINCT {', '.join(labels)} FROM segments))
            SELECT s.contact_id, p.* FROM segments s
            JOIN profiles p ON {' AND '.join(f's.{s} IS NOT DISTINCT FROM p.{s}' for s in labels)}""")
        by_profile = self.model.sql(f"""
            SELECT r.posting_id, strftime(r.month, '%Y-%m') AS month,
                   CASE WHEN r.current THEN 'current' ELSE 'previous' END AS period, p.profile, {_COUNT_SUMS}
            FROM {self.SENDS} r JOIN {self.PROFILES} p ON p.contact_id = r.contact_id
            GROUP BY ALL""")
        sums = self.model.sql(f"""
            SELECT p.profile, {_contact_sums_sql()} FROM {self.CONTACTS} c
            JOIN {self.PROFILES} p ON p.contact_id = c.contact_id GROUP BY p.profile ORDER BY p.profile""")
        profiles = self.model.sql(f"SELECT DISTINCT profile, {', '.join(labels)} FROM {self.PROFILES}")
        out = []
        for label in labels:
            inside = profiles[profiles[label].notna()]
            segment_of = pd.DataFrame({"profile": inside["profile"], "segment": _labels(inside[label])})
            out.append((_by_segment(by_profile.merge(segment_of, on="profile"), ("posting_id", "month", "period")),
                        _by_segment(sums.merge(segment_of, on="profile"), ())))
        return out


def _contact_sums_sql() -> str:
    """Sums over contacts of their counts in the period, squares and cross-products (``{metric}__y``,
    ``__d`` denominator, ``__e`` expected, ``__yy``…), exact; ``contacts`` counts the contacts with a
    delivered send, ``attempted_contacts`` those with any."""
    sums = ["count(*) FILTER (WHERE c.delivered > 0)::DOUBLE AS contacts", "count(*)::DOUBLE AS attempted_contacts"]
    for metric, (events, trials, expected) in _METRIC_COLUMNS.items():
        y, d, e = f"c.{events}", f"c.{trials}", f"c.{expected}::{_EXPECTED}"
        for suffix, value in (("y", y), ("d", d), ("e", e), ("yy", f"{y} * {y}"), ("dd", f"{d} * {d}"),
                              ("ee", f"{e} * {e}"), ("yd", f"{y} * {d}"), ("ye", f"{y} * {e}")):
            sums.append(f"sum({value})::DOUBLE AS {metric}__{suffix}")
    return ", ".join(sums)


def _label(value) -> str:
    text = "" if pd.isna(value) else str(value).strip()
    return text or EMPTY_VALUE


def _labels(values: pd.Series) -> np.ndarray:
    """Each stored segment value as shown (trimmed; blank: EMPTY_VALUE), computed once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return np.asarray([_label(u) for u in uniques], dtype=object)[codes]


def _by_segment(frame: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    """`frame` (profiles with their segment) summed by `keys` + segment: two stored values may show as
    one label."""
    values = [c for c in frame.columns if c not in keys and c not in ("segment", "profile")]
    return frame.groupby([*keys, "segment"], as_index=False)[values].sum()


def cluster_totals(row: pd.Series, metric: str, reference: str) -> stats.ClusterTotals:
    """ClusterTotals of `metric` from a contact_cluster_sums row; reference "d" (denominator: the
    pooled rate) or "e" (expected events: the posting-standardised ratio)."""
    r = reference
    clusters = row["attempted_contacts"] if metric == "error_rate" else row["contacts"]
    return stats.ClusterTotals(
        clusters=float(clusters), y=row[f"{metric}__y"], x=row[f"{metric}__{r}"],
        yy=row[f"{metric}__yy"], xx=row[f"{metric}__{r}{r}"], xy=row[f"{metric}__y{r}"])


# --- the analysis -----------------------------------------------------------------------------------

def _dimensions(settings: SegmentSettings) -> list[tuple[str, dict | None]]:
    builtin = [(name, None) for name in settings.dimensions]
    return builtin + [(c["name"], c) for c in settings.custom]


def _rate(events, trials) -> float:
    return float(events) / float(trials) if trials else float("nan")


def _segment_metrics(dimension: str, sums: pd.DataFrame, counts: pd.DataFrame, previous: pd.DataFrame,
                     settings: SegmentSettings, total_delivered: int, complaints_known: bool) -> pd.DataFrame:
    """One row per segment: sizes, every rate with its 95% interval, the previous period's rates."""
    before = previous.groupby("segment")[list(_COUNT_COLUMNS)].sum()
    out = []
    for _index, row in sums.iterrows():
        segment = row["segment"]
        delivered = int(round(row["open_rate__d"]))
        record = {"dimension": dimension, "segment": segment, "contacts": int(row["contacts"]),
                  "delivered": delivered,
                  "tested": bool(delivered >= settings.min_delivered
                                 and total_delivered - delivered >= settings.min_delivered)}
        for metric in RATE_METRICS:
            if metric == "complaint_rate" and not complaints_known:
                record.update({metric: None, f"{metric}_ci": None, f"previous_{metric}": None,
                               f"{metric}_change_pp": None})
                continue
            totals = cluster_totals(row, metric, "d")
            record[metric] = totals.ratio
            record[f"{metric}_ci"] = list(stats.clustered_wilson_interval(totals))
            record[f"{metric}_design_effect"] = totals.design_effect()
            events, trials = _POSTING_COLUMNS[metric]
            earlier = (_rate(before.at[segment, events], before.at[segment, trials])
                       if segment in before.index else float("nan"))
            record[f"previous_{metric}"] = earlier
            record[f"{metric}_change_pp"] = (totals.ratio - earlier) * 100
        out.append(record)
    return pd.DataFrame(out).sort_values("delivered", ascending=False, ignore_index=True)


def _segment_tests(dimension: str, sums: pd.DataFrame, total: pd.Series, counts: pd.DataFrame,
                   dimension_counts: pd.DataFrame, metrics: pd.DataFrame, alpha: float) -> list[dict]:
    """Each tested segment against the rest of its dimension, for every metric with events."""
    per_posting = counts.groupby(["segment", "posting_id"])[list(_COUNT_COLUMNS)].sum()
    posting_total = dimension_counts.groupby("posting_id")[list(_COUNT_COLUMNS)].sum()
    tested = set(metrics.loc[metrics["tested"], "segment"])
    versus = _VERSUS.get(dimension, f"rest of {dimension}")
    tests = []
    for _index, row in sums[sums["segment"].isin(tested)].iterrows():
        segment = row["segment"]
        seg_postings = per_posting.loc[segment].reindex(posting_total.index, fill_value=0)
        rest_postings = posting_total - seg_postings
        for metric in RATE_METRICS:
            events, trials = _POSTING_COLUMNS[metric]
            if seg_postings[events].sum() + rest_postings[events].sum() == 0:
                continue                      # nothing happened on either side: nothing to compare
            ratio = stats.within_posting_rate_ratio(seg_postings[events], seg_postings[trials],
                                                    rest_postings[events], rest_postings[trials])
            seg_std = cluster_totals(row, metric, "e")
            rest_std = cluster_totals(total, metric, "e") - seg_std
            se = np.sqrt(seg_std.log_ratio_variance() + rest_std.log_ratio_variance())
            within = stats.ratio_test(np.log(ratio) if ratio > 0 else float("nan"), se, alpha)
            seg_raw = cluster_totals(row, metric, "d")
            rest_raw = cluster_totals(total, metric, "d") - seg_raw
            raw = stats.pooled_ratio_test(seg_raw, rest_raw, alpha)
            tests.append({
                "dimension": dimension, "metric": metric, "segment": segment, "versus": versus,
                "ratio": within.ratio, "ci": list(within.ci), "p_value": within.p_value,
                "segment_rate": seg_raw.ratio, "versus_rate": rest_raw.ratio,
                "segment_delivered": int(round(row["open_rate__d"])),
                "versus_delivered": int(round(total["open_rate__d"] - row["open_rate__d"])),
                "raw_ratio": raw.ratio, "raw_ci": list(raw.ci), "raw_p_value": raw.p_value,
            })
    return tests


def _counted(model: Model, sends: SegmentSends, dimensions: list[Dimension]) -> list[tuple]:
    """For each dimension: (its counts by posting × month × period × segment, its contact sums by
    segment, the same two for everyone in the dimension counted once).

    A segment is compared with the rest of its dimension: contacts outside every segment (not in the
    CRM, in no address book) are not part of it. Dimensions whose segments do not overlap are counted
    together, their totals being their segments' sums; a dimension with overlapping segments (a contact
    in two address books) is counted alone, and its distinct members together with the others.
    """
    partition = [_is_partition(model, d) for d in dimensions]
    overlapping = [d for d, whole in zip(dimensions, partition) if not whole]
    together = iter(sends.count([d for d, whole in zip(dimensions, partition) if whole]
                                + [_everyone_in(d) for d in overlapping]))
    counted = {}
    for i in (i for i, whole in enumerate(partition) if whole):
        both, sums = next(together)
        counted[i] = (both, sums, both, sums.drop(columns="segment").sum().to_frame().T)
    for i in (i for i, whole in enumerate(partition) if not whole):
        counted[i] = (*sends.count([dimensions[i]])[0], *next(together))
    return [counted[i] for i in range(len(dimensions))]


def analyse_segments(model: Model, period: Period, settings: SegmentSettings,
                     human_opens: opens.ContactEvidence | None = None) -> SegmentResult:
    """Every dimension's segments with their rates and intervals, and the adjusted comparisons.

    Comparisons: each segment (delivered >= settings.min_delivered, and so is the rest of its
    dimension) against the rest of its dimension, for each of RATE_METRICS. ``ratio`` is the
    within-posting rate ratio segment ÷ rest (Poisson model with one effect per posting: a segment
    that merely got better letters is not higher); its interval and p-value use a sandwich variance
    with the contact as cluster. ``raw_ratio`` is the plain pooled ratio (also contact-clustered).
    p-values are adjusted across the whole table (Holm, or Benjamini–Hochberg with correction
    "fdr_bh"); a comparison whose raw ratio is significant while the within-posting one is not is a
    ``mix_effect``.

    With `human_opens` (opens.classify_contacts of the same period) each segment also gets the
    open-inflation report's headline estimate of its human open rate (Apple MPP and scanner opens
    removed), with a contact-bootstrap interval; it is shown, not tested.
    """
    notes: list[str] = []
    previous_period = period.previous()
    complaints_known = complaints_recorded(model)
    if not complaints_known:
        notes.append(_("complaint_rate is null: the database has no b_sender_abuse table with CONTACT_ID"))
    dimensions = []
    for name, custom in _dimensions(settings):
        try:
            dimensions.append(segment_dimension(model, name, period, custom))
        except DimensionError as exc:
            notes.append(_("dimension {name} skipped: {reason}").format(name=name, reason=exc))

    metric_frames, test_rows, monthly_frames, posting_frames = [], [], [], []
    with SegmentSends(model, period, previous_period, complaints_known) as sends:
        counted = _counted(model, sends, dimensions)
    for dimension, (both, sums, dimension_both, dimension_sums) in zip(dimensions, counted):
        if sums.empty:
            notes.append(_("dimension {name}: no contact delivered in the period belongs to any of its "
                           "segments").format(name=dimension.name))
            continue
        counts = both[both["period"] == "current"]
        previous = both[both["period"] == "previous"]
        dimension_counts = dimension_both[dimension_both["period"] == "current"]
        total = dimension_sums.iloc[0]
        metrics = _segment_metrics(dimension.name, sums, counts, previous, settings,
                                   int(round(total["open_rate__d"])), complaints_known)
        if human_opens is not None:
            metrics = _with_human_opens(model, dimension, metrics, human_opens)
        metric_frames.append(metrics)
        test_rows += _segment_tests(dimension.name, sums, total, counts, dimension_counts, metrics,
                                    settings.alpha)
        monthly_frames.append(_monthly(dimension.name, counts))
        posting_frames.append(counts.groupby(["posting_id", "segment"], as_index=False)[list(_COUNT_COLUMNS)]
                              .sum().assign(dimension=dimension.name))
    if human_opens is None:
        notes.append(_("open_rate is the raw open rate (any read, machine opens included); human_open_rate (MPP "
                       "corrected) was not computed for this run"))
    else:
        notes.append(_("human_open_rate: the open-inflation estimate per segment ({evidence} evidence, the "
                       "open_inflation headline's estimator: {estimator}), shown with a contact-bootstrap interval "
                       "and not tested; differences test the raw open_rate, within postings").format(
            evidence=human_opens.evidence, estimator=human_opens.headline_estimator().replace("_", " ")))

    empty = pd.DataFrame(columns=["dimension", "segment"])   # a period without sends has no segment
    metrics = pd.concat(metric_frames, ignore_index=True) if metric_frames else empty
    differences = _adjust(pd.DataFrame(test_rows), settings)
    monthly = pd.concat(monthly_frames, ignore_index=True) if monthly_frames else empty
    postings = pd.concat(posting_frames, ignore_index=True) if posting_frames else empty
    figures = _figures(metrics, differences, settings, period, previous_period)
    return SegmentResult(metrics, differences, monthly, postings, figures, notes)


def _with_human_opens(model: Model, dimension: Dimension, metrics: pd.DataFrame,
                      human_opens: opens.ContactEvidence) -> pd.DataFrame:
    """`metrics` with human_open_rate, its interval and open_inflation_pp (raw − human, points) per
    segment, from the contacts of each segment (one contact-level query)."""
    human = opens.human_open_rates_by_segment(human_opens, membership(model, dimension))
    human = human.rename(columns={"inflation_pp": "open_inflation_pp"})
    return metrics.merge(human[["segment", "human_open_rate", "human_open_rate_ci", "open_inflation_pp"]],
                         on="segment", how="left")


def _monthly(dimension: str, counts: pd.DataFrame) -> pd.DataFrame:
    """Segment × month rates (fractions) from the posting × month × segment counts."""
    grouped = counts.groupby(["segment", "month"], as_index=False)[list(_COUNT_COLUMNS)].sum()
    for metric, (events, trials) in _POSTING_COLUMNS.items():
        grouped[metric] = grouped[events] / grouped[trials].where(grouped[trials] > 0)
    return grouped.assign(dimension=dimension)


def _adjust(tests: pd.DataFrame, settings: SegmentSettings) -> pd.DataFrame:
    if tests.empty:
        return tests
    tests["p_adjusted"], tests["significant"] = stats.adjust_p_values(
        tests["p_value"], settings.correction, settings.alpha)
    tests["raw_p_adjusted"], raw_significant = stats.adjust_p_values(
        tests["raw_p_value"], settings.correction, settings.alpha)
    tests["mix_effect"] = raw_significant & ~tests["significant"]
    tests["correction"] = settings.correction
    return tests


def _figures(metrics: pd.DataFrame, differences: pd.DataFrame, settings: SegmentSettings,
             period: Period, previous_period: Period) -> dict:
    dimensions: dict = {}
    keep = ["delivered", "contacts", "tested", *[k for m in RATE_METRICS for k in
            (m, f"{m}_ci", f"previous_{m}", f"{m}_change_pp")],
            "human_open_rate", "human_open_rate_ci", "open_inflation_pp"]
    for record in metrics.to_dict(orient="records"):
        dimensions.setdefault(record["dimension"], {})[record["segment"]] = {
            k: record[k] for k in keep if k in record}
    diff_keys = ["dimension", "metric", "segment", "versus", "ratio", "ci", "p_value", "p_adjusted",
                 "significant", "segment_rate", "versus_rate", "segment_delivered", "versus_delivered",
                 "raw_ratio", "raw_ci", "raw_p_adjusted", "mix_effect"]
    differences_list = [] if differences.empty else differences[diff_keys].to_dict(orient="records")
    return {
        "dimensions": dimensions,
        "differences": differences_list,
        "correction": settings.correction,
        "min_delivered": settings.min_delivered,
        "alpha": settings.alpha,
        "previous_period": {"start": previous_period.start, "end": previous_period.end},
        "method": ("within-posting rate ratio (Poisson model with posting effects), contact-clustered "
                   "sandwich variance; intervals on rates: Wilson on the contact-clustered effective size"),
    }


TABLE_COLUMNS = ["segment", "contacts", "delivered", "open_rate", "open_rate_ci", "human_open_rate",
                 "human_open_rate_ci", "click_rate", "click_rate_ci", "ctor", "ctor_ci", "unsub_rate", "unsub_rate_ci",
                 "complaint_rate", "complaint_rate_ci", "error_rate", "error_rate_ci", "previous_open_rate",
                 "open_rate_change_pp", "tested"]


def dimension_table(metrics: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """The table shown for one dimension: one row per segment, largest first."""
    rows = metrics[metrics["dimension"] == dimension]
    return rows[[c for c in TABLE_COLUMNS if c in rows.columns]].reset_index(drop=True)


def headline(differences: pd.DataFrame, correction: str) -> str:
    """The report's one line (`narrative.segments.headline`: its example is the most actionable difference)."""
    from mailaudit.narrative.segments import headline as words

    return words(differences, correction)
