/* The LLM tab's live part (metrics/webui_live.py serves it and the JSON it polls).
 *
 * Locust's React app draws an extended tab as a table only. This script keeps one <section> of its
 * own right above the LLM table whenever that table is on screen (React leaves a node it did not
 * create alone), and the cost budget's banner above the whole app. Charts are plain SVG: no library,
 * no network. Number formats follow metrics/web_formats.py.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var LIVE_URL = script.getAttribute("data-live-url");
  var POLL_MS = 2000;
  var SVG_NS = "http://www.w3.org/2000/svg";
  var COLORS = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f"];
  var KIND_LABELS = {
    rate_limited: "429",
    server_error: "5xx",
    timeout: "timeout",
    connection: "connection",
    client_error: "4xx",
    invalid_response: "invalid",
  };
  // The LLM table's own column (webui.py's WEB_COLUMNS): how this script finds the tab's content.
  var TABLE_MARK = 'th[data-sortkey="ttftninetyfive"]';

  // ---- number formats (metrics/web_formats.py) -------------------------------------------------
  function usd(v) {
    if (v === 0) return "0";
    if (Math.abs(v) >= 1) return v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    var fixed = v.toFixed(Math.min(12, 3 - Math.floor(Math.log10(Math.abs(v)))));
    return fixed.replace(/0+$/, "").replace(/\.$/, "");
  }
  // An axis tick: small ranges need decimals that whole counts do not.
  function tick(v) {
    return v.toLocaleString("en-US", { maximumFractionDigits: v !== 0 && Math.abs(v) < 10 ? 2 : 0 });
  }
  function elapsed(seconds) {
    var s = Math.max(0, Math.round(seconds));
    var m = Math.floor(s / 60);
    return m + ":" + String(s % 60).padStart(2, "0");
  }

  // ---- DOM helpers ------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, attrs[name]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, attrs[name]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var panel = el("section", { id: "gemini-llm-live", "aria-label": "LLM live verdicts and charts" });
  var banner = el("div", { id: "gemini-budget-banner", role: "alert" });
  banner.hidden = true;

  // ---- placement ---------------------------------------------------------------------------------
  function placeBanner() {
    var root = document.getElementById("root");
    if (!banner.isConnected && root) document.body.insertBefore(banner, root);
  }

  function placePanel() {
    var mark = document.querySelector(TABLE_MARK);
    var table = mark && (mark.closest(".MuiTableContainer-root") || mark.closest("table"));
    if (!table) {
      if (panel.isConnected) panel.remove();
      return;
    }
    if (table.previousSibling !== panel) table.parentNode.insertBefore(panel, table);
  }

  // ---- the verdicts --------------------------------------------------------------------------------
  function statusBlock(data) {
    var block = el("div", { class: "gl-status" });
    if (data.budget) {
      var line = el("div", { class: "gl-line", "data-budget": data.budget.reached ? "reached" : "ok" }, data.budget.text);
      if (data.budget.reached) line.classList.add("gl-fail-text");
      block.appendChild(line);
    }
    if (data.capacity) block.appendChild(el("div", { class: "gl-line", "data-capacity": "" }, data.capacity.text));
    if (data.gates_error) block.appendChild(el("div", { class: "gl-line gl-fail-text" }, data.gates_error));
    if (data.gates.length) {
      var gates = el("div", { class: "gl-gates" });
      gates.appendChild(el("span", { class: "gl-title" }, "SLO gates, run so far:"));
      data.gates.forEach(function (gate) {
        var chip = el("span", {
          class: "gl-gate " + (gate.passed ? "gl-pass" : "gl-fail"),
          "data-gate": gate.expr,
          "data-passed": String(gate.passed),
        });
        chip.appendChild(el("b", {}, gate.passed ? "PASS" : "FAIL"));
        chip.appendChild(document.createTextNode(" " + gate.expr + " · now " + gate.shown));
        gates.appendChild(chip);
      });
      block.appendChild(gates);
    }
    return block;
  }

  // ---- the charts --------------------------------------------------------------------------------
  var W = 320;
  var H = 150;
  var PAD = { left: 52, right: 10, top: 8, bottom: 22 };

  function niceMax(value) {
    if (!(value > 0)) return 1;
    var power = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * power >= value) return steps[i] * power;
    return 10 * power;
  }

  // One line chart: lines is [{name, values}], a null value breaks the line; a lone point is a dot.
  function lineChart(key, title, t, lines, format, emptyText) {
    var figure = el("figure", { class: "gl-chart", "data-chart": key });
    var caption = el("figcaption", {}, title);
    figure.appendChild(caption);
    var chart = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": title });
    var x0 = PAD.left;
    var x1 = W - PAD.right;
    var y0 = H - PAD.bottom;
    var y1 = PAD.top;
    var top = 0;
    lines.forEach(function (line) {
      line.values.forEach(function (v) {
        if (v !== null && v > top) top = v;
      });
    });
    top = niceMax(top);
    var start = t.length ? t[0] : 0;
    var span = t.length > 1 ? t[t.length - 1] - start : 1;
    function x(i) {
      return x0 + ((t[i] - start) / span) * (x1 - x0);
    }
    function y(v) {
      return y0 - (v / top) * (y0 - y1);
    }
    [0, 0.5, 1].forEach(function (share) {
      var yy = y(top * share);
      chart.appendChild(svg("line", { x1: x0, x2: x1, y1: yy, y2: yy, class: "gl-grid" }));
      chart.appendChild(svg("text", { x: x0 - 4, y: yy + 4, class: "gl-axis", "text-anchor": "end" }, format(top * share)));
    });
    chart.appendChild(svg("text", { x: x0, y: H - 6, class: "gl-axis" }, "0:00"));
    if (t.length > 1) {
      chart.appendChild(svg("text", { x: x1, y: H - 6, class: "gl-axis", "text-anchor": "end" }, elapsed(span)));
    }
    var drawn = 0;
    lines.forEach(function (line, index) {
      var color = COLORS[index % COLORS.length];
      var d = "";
      var points = 0;
      var run = [];
      function flush() {
        if (run.length === 1) {
          chart.appendChild(svg("circle", { cx: x(run[0]), cy: y(line.values[run[0]]), r: 2.5, fill: color }));
        }
        run = [];
      }
      line.values.forEach(function (v, i) {
        if (v === null || v === undefined) {
          flush();
          return;
        }
        d += (run.length ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
        run.push(i);
        points += 1;
      });
      flush();
      drawn += points;
      chart.appendChild(
        svg("path", { d: d || "M0 0", fill: "none", stroke: color, "stroke-width": 1.8, "data-series": line.name, "data-points": points })
      );
      var swatch = el("span", { class: "gl-legend" }, line.name);
      swatch.style.setProperty("--gl-color", color);
      caption.appendChild(swatch);
    });
    if (!drawn) {
      chart.appendChild(svg("text", { x: (x0 + x1) / 2, y: (y0 + y1) / 2, class: "gl-empty", "text-anchor": "middle" }, emptyText || "no data yet"));
    }
    figure.appendChild(chart);
    return figure;
  }

  function chartsBlock(series) {
    var block = el("div", { class: "gl-charts" });
    var t = series.t || [];
    block.appendChild(
      lineChart("ttft", "TTFT, last 10 s (ms)", t, [
        { name: "p50", values: series.ttft_p50_ms || [] },
        { name: "p95", values: series.ttft_p95_ms || [] },
      ], tick)
    );
    block.appendChild(
      lineChart("tokens", "Output tokens/s", t, [{ name: "tokens/s", values: series.output_tokens_per_s || [] }], tick)
    );
    var kinds = Object.keys(series.errors || {});
    block.appendChild(
      lineChart(
        "errors",
        "Failed calls by kind, so far",
        t,
        kinds.map(function (kind) {
          return { name: KIND_LABELS[kind] || kind, values: series.errors[kind] };
        }),
        tick,
        t.length ? "no failures" : "no data yet"
      )
    );
    block.appendChild(lineChart("cost", "Cost so far (USD)", t, [{ name: "USD", values: series.cost_usd || [] }], usd));
    return block;
  }

  // ---- polling -------------------------------------------------------------------------------------
  function render(data) {
    placeBanner();
    if (data.banner) {
      var at = data.budget && data.budget.reached_at ? " at " + new Date(data.budget.reached_at * 1000).toLocaleTimeString() : "";
      banner.textContent = data.banner + at + ". Start a new test to clear this.";
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
    panel.replaceChildren(statusBlock(data), chartsBlock(data.series || {}));
    placePanel();
  }

  function poll() {
    fetch(LIVE_URL, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (data) render(data);
      })
      .catch(function () {})
      .then(function () {
        setTimeout(poll, POLL_MS);
      });
  }

  new MutationObserver(placePanel).observe(document.getElementById("root") || document.body, {
    childList: true,
    subtree: true,
  });
  poll();
})();
