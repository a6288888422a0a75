// taskcodec board page: table sorting and filtering, and the rate-quality chart (Plotly, bundled).
// All data comes from the JSON in #board-data; text reaches the page only as text nodes or escaped.
"use strict";

(function () {
  const dataNode = document.getElementById("board-data");
  if (!dataNode) return;
  const board = JSON.parse(dataNode.textContent);
  const REFERENCE = "none";

  // Plotly renders a small HTML subset in legend and hover text: escape so a label shows as typed.
  function plotlyText(value) {
    return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function columnOf(key) {
    return board.columns.find(function (c) { return c.key === key; }) || { key: key, percent: false };
  }

  function filters() {
    const families = new Set(Array.from(document.querySelectorAll("input.family:checked")).map(function (e) { return e.value; }));
    const lo = parseFloat(document.getElementById("bpp-min").value);
    const hi = parseFloat(document.getElementById("bpp-max").value);
    return {
      families: families,
      lo: isNaN(lo) ? -Infinity : lo,
      hi: isNaN(hi) ? Infinity : hi,
      metric: document.getElementById("metric").value,
    };
  }

  function kept(row, f) {
    if (!f.families.has(row.family)) return false;
    if (row.codec === REFERENCE) return true;  // the reference is a level, not a point on the rate axis
    return row.bpp >= f.lo && row.bpp <= f.hi;
  }

  function filterTable(f) {
    const trs = document.querySelectorAll("#results tbody tr");
    let shown = 0;
    trs.forEach(function (tr) {
      const row = { family: tr.dataset.family, codec: tr.dataset.codec, bpp: parseFloat(tr.dataset.bpp) };
      const visible = kept(row, f);
      tr.hidden = !visible;
      if (visible) shown += 1;
    });
    document.getElementById("shown").textContent = shown + " of " + trs.length + " rows shown";
    document.querySelectorAll("#results th").forEach(function (th) {
      th.classList.toggle("metric", th.dataset.key === f.metric);
    });
  }

  function drawChart(f) {
    const chart = document.getElementById("chart");
    if (typeof Plotly === "undefined" || !chart) return;
    const column = columnOf(f.metric);
    const scale = column.percent ? 100 : 1;
    const traces = [];
    const shapes = [];
    const groups = {};
    board.rows.forEach(function (row) {
      if (!kept(row, f) || row[f.metric] === null || row[f.metric] === undefined) return;
      if (row.codec === REFERENCE) {
        shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: row[f.metric] * scale, y1: row[f.metric] * scale,
                      line: { color: "#444", dash: "dot", width: 1 } });
        return;
      }
      (groups[row.codec] = groups[row.codec] || []).push(row);
    });
    Object.keys(groups).forEach(function (codec) {
      const rows = groups[codec].slice().sort(function (a, b) { return a.bpp - b.bpp; });
      const style = board.styles[codec] || { color: "#333", dash: "solid", symbol: "circle" };
      const anchor = board.anchors.indexOf(codec) >= 0;
      traces.push({
        type: "scatter", mode: "lines+markers", name: plotlyText(codec),
        x: rows.map(function (r) { return r.bpp; }),
        y: rows.map(function (r) { return r[f.metric] * scale; }),
        text: rows.map(function (r) { return plotlyText(r.rate_point === null ? "" : r.rate_point); }),
        hovertemplate: plotlyText(codec) + "<br>rate point %{text}<br>%{x:.3f} bpp<br>" + plotlyText(f.metric) +
          " %{y:.2f}<extra></extra>",
        line: { color: style.color, dash: style.dash, width: anchor ? 3 : 1.5 },
        marker: { symbol: style.symbol, size: anchor ? 8 : 6, color: style.color },
      });
    });
    const layout = {
      xaxis: { title: { text: "rate (bits per pixel)" }, type: "log" },
      yaxis: { title: { text: plotlyText(f.metric) + (column.percent ? " (%)" : "") } },
      shapes: shapes, margin: { t: 20 }, legend: { orientation: "v" }, hovermode: "closest",
    };
    Plotly.react(chart, traces, layout, { displaylogo: false, responsive: true });
  }

  function update() {
    const f = filters();
    filterTable(f);
    drawChart(f);
  }

  // Sorting: a click on a header sorts by it, a second click reverses; numbers sort as numbers, blanks last.
  function makeSortable(table) {
    const headers = table.querySelectorAll("thead th");
    headers.forEach(function (th, index) {
      function sort() {
        const ascending = th.dataset.order !== "asc";
        headers.forEach(function (h) { delete h.dataset.order; h.removeAttribute("aria-sort"); });
        th.dataset.order = ascending ? "asc" : "desc";
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const numeric = th.dataset.numeric === "yes";
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        function key(tr) {
          const cell = tr.cells[index];
          const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent;
          return numeric ? (raw === "" ? NaN : parseFloat(raw)) : raw;
        }
        rows.sort(function (a, b) {
          const x = key(a), y = key(b);
          if (numeric) {
            if (isNaN(x) && isNaN(y)) return 0;
            if (isNaN(x)) return 1;
            if (isNaN(y)) return -1;
            return ascending ? x - y : y - x;
          }
          return ascending ? String(x).localeCompare(String(y)) : String(y).localeCompare(String(x));
        });
        rows.forEach(function (tr) { body.appendChild(tr); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
    });
  }

  document.querySelectorAll("table.sortable").forEach(makeSortable);
  document.querySelectorAll("#controls input, #controls select").forEach(function (el) {
    el.addEventListener("change", update);
    el.addEventListener("input", update);
  });
  update();
})();
