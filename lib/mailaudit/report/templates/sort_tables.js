/* Sort every report table on a click on a column header (again: the other way). Cells carry their
   raw value in data-v; numbers sort as numbers, the rest as text. No fetch, no library. */
document.querySelectorAll("table.sortable").forEach(function (table) {
  var body = table.tBodies[0];
  if (!body) return;
  table.querySelectorAll("thead th").forEach(function (th, column) {
    var ascending = false;
    th.title = document.documentElement.lang === "ru" ? "Сортировать по этому столбцу" : "Sort by this column";
    th.addEventListener("click", function () {
      ascending = !ascending;
      table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute("data-v") || "", y = b.cells[column].getAttribute("data-v") || "";
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
