// The run page's table: sort by a column (click its heading), filter by name and verdict,
// show or hide the secondary columns. Inline and dependency-free: the page stays one file
// that works offline. The page's Content-Security-Policy allows this script by its hash only.
(function () {
  "use strict";
  function cellAt(row, index) {  // the cell in column `index`, counting colspans; null inside a span
    var column = 0;
    for (var i = 0; i < row.cells.length; i++) {
      if (column === index) { return row.cells[i]; }
      column += row.cells[i].colSpan;
      if (column > index) { return null; }
    }
    return null;
  }
  function cellValue(row, index, numeric) {
    var cell = cellAt(row, index);
    if (!cell) { return numeric ? Infinity : ""; }
    var raw = cell.getAttribute("data-value");
    if (numeric) {
      var number = parseFloat(raw === null ? cell.textContent : raw);
      return isNaN(number) ? Infinity : number;
    }
    return (raw === null ? cell.textContent : raw).trim().toLowerCase();
  }
  function sortBy(table, heading) {
    var index = Array.prototype.indexOf.call(heading.parentNode.children, heading);
    var numeric = heading.getAttribute("data-sort") === "num";
    var ascending = heading.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
      var order = x < y ? -1 : (x > y ? 1 : 0);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    table.querySelectorAll("th[data-sort]").forEach(function (th) { th.removeAttribute("aria-sort"); });
    heading.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  function applyFilter(controls, table) {
    var text = controls.querySelector("input.filter-text").value.trim().toLowerCase();
    var verdict = controls.querySelector("select.filter-verdict").value;
    var shown = 0, rows = table.tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var name = (row.getAttribute("data-variant") || "").toLowerCase();
      var keep = name.indexOf(text) !== -1 && (verdict === "" || row.getAttribute("data-verdict") === verdict);
      row.hidden = !keep;
      if (keep) { shown++; }
    }
    controls.querySelector(".filter-count").textContent = shown + " of " + rows.length + " rows";
  }
  document.querySelectorAll("table.comparison").forEach(function (table) {
    table.querySelectorAll("th[data-sort]").forEach(function (heading) {
      heading.tabIndex = 0;
      heading.addEventListener("click", function () { sortBy(table, heading); });
      heading.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(table, heading); }
      });
    });
    var controls = document.getElementById("controls-" + table.getAttribute("data-target-index"));
    if (!controls) { return; }
    controls.hidden = false;
    controls.querySelector("input.filter-text").addEventListener("input", function () { applyFilter(controls, table); });
    controls.querySelector("select.filter-verdict").addEventListener("change", function () { applyFilter(controls, table); });
    controls.querySelector("input.all-columns").addEventListener("change", function (event) {
      table.classList.toggle("all-columns", event.target.checked);
    });
    applyFilter(controls, table);
  });
})();
