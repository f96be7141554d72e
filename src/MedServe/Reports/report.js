// Draws a MedServe model report from the JSON in #report-data with the bundled uPlot. Every text
// goes in through textContent (never as HTML): model, feature and subgroup names are data.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var main = document.getElementById("report");

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }

  function num(x, digits) {
    return typeof x === "number" && isFinite(x) ? x.toFixed(digits === undefined ? 3 : digits) : "";
  }

  function section(title, id) {
    var s = el("section");
    s.id = id;
    s.appendChild(el("h2", title));
    main.appendChild(s);
    return s;
  }

  function table(parent, headers, rows, id) {
    var t = el("table");
    if (id) { t.id = id; }
    var head = el("tr");
    headers.forEach(function (h) { head.appendChild(el("th", h)); });
    t.appendChild(head);
    rows.forEach(function (r) {
      var tr = el("tr");
      r.forEach(function (c) { tr.appendChild(el("td", c)); });
      t.appendChild(tr);
    });
    parent.appendChild(t);
    return t;
  }

  function colour(i) { return "hsl(" + ((i * 47) % 360) + ", 65%, 45%)"; }

  function plot(parent, id, title, xLabel, yLabel, x, series, time) {
    var holder = el("div", null, "chart");
    holder.id = id;
    parent.appendChild(holder);
    var opts = {
      title: title, width: 560, height: 320,
      // The x range is every window's, so windows without enough rows keep their place on the axis.
      scales: { x: time ? { time: true, range: [x[0], x[x.length - 1]] } : { time: false } },
      axes: [{ label: xLabel }, { label: yLabel }],
      series: [{}].concat(series.map(function (s, i) {
        return { label: s.label, stroke: s.stroke || colour(i), width: s.width || 2, dash: s.dash };
      })),
    };
    new uPlot(opts, [x].concat(series.map(function (s) { return s.values; })), holder);
  }

  document.getElementById("title").textContent = "MedServe report: " + data.model + (data.version ? " version " + data.version : "");
  document.getElementById("subtitle").textContent = "Generated " + data.generated_at + " over " + data.from + " to " + data.to + ". Aggregates only: no patient's data is in this page.";

  // Clinical performance: the figures, the ROC and calibration curves, the subgroups.
  var perf = data.performance;
  var p = section("Clinical performance", "performance");
  p.appendChild(el("p", perf.n + " outcomes, " + perf.positives + " positive, threshold " + perf.threshold +
    (perf.estimated ? "; estimated AUROC before outcomes " + num(perf.estimated.auroc) + " over " + perf.estimated.n + " predictions (" + perf.estimated.assumption + ")" : "")));
  if (perf.insufficient) { p.appendChild(el("p", perf.insufficient, "note")); }
  if (perf.metrics) {
    table(p, ["metric", "value", "95% CI"], Object.keys(perf.metrics).filter(function (k) { return perf.metrics[k] && perf.metrics[k].value !== undefined; }).map(function (k) {
      var m = perf.metrics[k];
      return [k, num(m.value), m.ci_low !== undefined ? num(m.ci_low) + " to " + num(m.ci_high) : ""];
    }), "metrics");
  }

  if (data.roc) {
    plot(p, "roc", "ROC curve (AUROC " + num(perf.metrics.auroc.value) + ")", "false positive rate", "true positive rate", data.roc.fpr,
      [{ label: "model", values: data.roc.tpr }, { label: "chance", values: data.roc.fpr, stroke: "#999", width: 1, dash: [5, 5] }]);
  }

  if (perf.metrics && perf.metrics.reliability) {
    var bins = perf.metrics.reliability;
    p.appendChild(el("p", "Calibration bins: " + perf.metrics.ece_binning + ".", "note"));
    plot(p, "calibration", "Calibration (ECE " + num(perf.metrics.ece.value) + ")", "mean predicted risk", "observed rate",
      bins.map(function (b) { return b.mean_score; }),
      [{ label: "observed", values: bins.map(function (b) { return b.observed_rate; }) }, { label: "perfect", values: bins.map(function (b) { return b.mean_score; }), stroke: "#999", width: 1, dash: [5, 5] }]);
  }

  var rows = [];
  Object.keys(perf.subgroups || {}).forEach(function (parameter) {
    perf.subgroups[parameter].forEach(function (g) {
      var gap = g.gaps && g.gaps.auroc;
      rows.push([parameter, g.value, g.n, g.metrics ? num(g.metrics.auroc.value) : g.insufficient, gap ? num(gap.gap) : "",
        gap && gap.versus_rest ? num(gap.versus_rest.ci_low) + " to " + num(gap.versus_rest.ci_high) : "", gap && gap.flagged ? "FLAGGED" : ""]);
    });
  });
  var s = section("Subgroups", "subgroups");
  if (rows.length) {
    table(s, ["parameter", "value", "n", "AUROC", "gap to whole", "vs rest 95% CI", "flag"], rows, "subgroup-table");
  } else {
    s.appendChild(el("p", "The model declares no subgroups, or none had outcomes.", "note"));
  }

  // Drift per feature over time, and the latest window's tests.
  var d = section("Drift", "drift");
  if (data.drift && data.drift.windows && data.drift.windows.length) {
    var windows = data.drift.windows.filter(function (w) { return w.features; });
    var names = windows.length ? Object.keys(windows[windows.length - 1].features) : [];
    if (windows.length) {
      plot(d, "drift-over-time", "Drift statistic per feature, by window", "window end", "statistic",
        windows.map(function (w) { return Date.parse(w.to) / 1000; }),
        names.map(function (n) { return { label: n, values: windows.map(function (w) { return w.features[n] === undefined ? null : w.features[n]; }), width: 1.5 }; }), true);
    }
    table(d, ["window from", "window to", "rows", "drift detected"], data.drift.windows.map(function (w) {
      return [w.from, w.to, w.rows, w.features ? (w.drift_detected ? "yes" : "no") : (w.insufficient || "")];
    }), "drift-windows");
    var latest = data.drift.latest;
    if (latest && latest.features) {
      d.appendChild(el("h3", "The whole period: " + latest.drifted_features + " of " + latest.features.length + " features drifted (" + latest.correction + ")" +
        (latest.multivariate ? "; multivariate MMD p = " + num(latest.multivariate.p_value, 4) : "")));
      table(d, ["feature", "test", "statistic", "adjusted p", "PSI", "drifted"], latest.features.map(function (f) {
        return [f.name, f.test, num(f.statistic, 4), num(f.adjusted_p_value, 4), num(f.psi, 4), f.drifted ? "yes" : ""];
      }), "drift-table");
    }
  } else {
    d.appendChild(el("p", data.drift && data.drift.none ? data.drift.none : "No drift reference.", "note"));
  }

  // Alerts on this model.
  var a = section("Alerts", "alerts");
  if (data.alerts.length) {
    table(a, ["at", "rule", "metric", "state", "value"], data.alerts.map(function (e) { return [e.at, e.rule, e.metric, e.state, num(e.value, 4)]; }), "alert-table");
  } else {
    a.appendChild(el("p", "No alert events for this model.", "note"));
  }

  document.body.setAttribute("data-rendered", String(document.querySelectorAll("canvas").length));
})();
