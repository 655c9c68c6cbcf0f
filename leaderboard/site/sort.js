// Sort a results table by a column when its heading is clicked: the method column alphabetically,
// a number column by the mean it carries (data-mean), best first; cells without a number go last.
// Loaded as a file so that the pages' Content-Security-Policy can forbid every inline script.
"use strict";

function sortKey(row, column) {
  const cell = row.cells[column];
  if (column === 0) return cell.textContent.trim().toLowerCase();
  return cell.dataset.mean === undefined ? null : parseFloat(cell.dataset.mean);
}

function sortTable(table, column) {
  const heading = table.tHead.rows[0].cells[column];
  const descending = column !== 0 && heading.getAttribute("aria-sort") !== "descending"
    || column === 0 && heading.getAttribute("aria-sort") === "ascending";
  for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort");
  heading.setAttribute("aria-sort", descending ? "descending" : "ascending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = sortKey(a, column), y = sortKey(b, column);
    if (x === null || y === null) return (x === null) - (y === null);
    const order = x < y ? -1 : x > y ? 1 : 0;
    return descending ? -order : order;
  });
  for (const row of rows) body.appendChild(row);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table.sortable")) {
    Array.from(table.tHead.rows[0].cells).forEach((heading, column) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = heading.textContent;
      button.title = "sort by this column";
      heading.textContent = "";
      heading.appendChild(button);
      button.addEventListener("click", () => sortTable(table, column));
    });
  }
});
