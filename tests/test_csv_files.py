"""Every CSV the kit writes is safe to open in a spreadsheet and keeps Cyrillic readable in Excel."""
import pandas as pd

from mailaudit.report.csv_files import write_csv

HOSTILE = ["=hyperlink(\"http://x\")@mail.ru", "+cmd|' /c calc'!a0@mail.ru", "@sum(1+1)@mail.ru",
           "-2+3@mail.ru", "\tx@mail.ru", "\rx@mail.ru"]


def test_formula_cells_are_quoted_and_numbers_kept(tmp_path):
    frame = pd.DataFrame({"email": HOSTILE + ["ivan@mail.ru"], "count": [-1, 2, 3, 4, 5, 6, 7]})
    path = write_csv(frame, tmp_path / "x.csv")
    back = pd.read_csv(path, encoding="utf-8-sig", keep_default_na=False)
    assert len(back) == len(frame)   # a carriage return inside a cell does not split its row
    assert all(v.startswith("'") for v in back["email"][:-1])
    assert back["email"].iloc[-1] == "ivan@mail.ru"
    assert back["count"].tolist() == [-1, 2, 3, 4, 5, 6, 7]
    assert [v[1:] for v in back["email"][:4]] == HOSTILE[:4]


def test_bom_for_excel_and_option_off(tmp_path):
    frame = pd.DataFrame({"список": ["Иван"]})
    assert (write_csv(frame, tmp_path / "a.csv").read_bytes()[:3]) == b"\xef\xbb\xbf"
    assert (write_csv(frame, tmp_path / "b.csv", bom=False).read_bytes()[:3]) != b"\xef\xbb\xbf"
    assert pd.read_csv(tmp_path / "a.csv", encoding="utf-8-sig").columns[0] == "список"


def test_hostile_index_and_column_names(tmp_path):
    frame = pd.DataFrame({"=bad": [1]}, index=pd.Index(["=evil"], name="segment"))
    text = write_csv(frame, tmp_path / "c.csv", index=True).read_text(encoding="utf-8-sig")
    assert "'=bad" in text and "'=evil" in text
