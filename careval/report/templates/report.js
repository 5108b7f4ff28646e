/* The report's behaviour: compact contents on phones, sortable tables with a CSV copy each,
   folded reading sections and printing of the board summary. No network, no framework; the
   page reads in full without it. */
(function () {
  "use strict";
  var doc = document, root = doc.documentElement;
  root.classList.add("js");
  var MISSING = /^(|-|\u2013|\u2014|\*|\u2026|n\/a|na|nan|none|null)$/i;
  var NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?/i;

  function text(el) { return (el.textContent || "").replace(/\s+/g, " ").trim(); }
  function raw(cell) { return cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : text(cell); }
  function number(v) {
    var s = v.replace(/[,\s\u00a0\u2009\u202f]|^[£$\u20ac]/g, "").replace(/^\u2212/, "-");
    return NUMBER.test(s) ? parseFloat(s) : NaN;
  }

  /* CSV (RFC 4180): header labels as shown, cells from data-v where present. */
  function csvField(v) {
    if (/^[=+\-@\t\r]/.test(v) && isNaN(number(v))) v = "'" + v; // no formulas in a spreadsheet
    return /[",\r\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
  }
  function csv(table) {
    var lines = [];
    Array.prototype.forEach.call(table.rows, function (row) {
      var head = row.parentNode.tagName === "THEAD";
      lines.push(Array.prototype.map.call(row.cells, function (c) {
        return csvField(head ? (c.getAttribute("data-label") || text(c)) : raw(c));
      }).join(","));
    });
    return "\ufeff" + lines.join("\r\n") + "\r\n";
  }
  function refreshCsv(table) {
    if (table.csvLink) table.csvLink.href = "data:text/csv;charset=utf-8," + encodeURIComponent(csv(table));
  }

  /* Sorting: numbers by value, text alphabetically, missing and suppressed cells last. */
  function sortBy(table, th, col) {
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    Array.prototype.forEach.call(table.tHead.rows[table.tHead.rows.length - 1].cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    Array.prototype.forEach.call(table.tBodies, function (body) {
      var rows = Array.prototype.map.call(body.rows, function (r, i) {
        var c = r.cells[col], v = c ? raw(c).trim() : "";
        return { row: r, i: i, v: v, n: number(v), missing: MISSING.test(v) };
      });
      var numeric = rows.every(function (r) { return r.missing || !isNaN(r.n); });
      rows.sort(function (a, b) {
        if (a.missing !== b.missing) return a.missing ? 1 : -1;
        var d = a.missing ? 0 : numeric ? a.n - b.n
          : a.v.localeCompare(b.v, undefined, { numeric: true, sensitivity: "base" });
        return d * dir || a.i - b.i;
      });
      rows.forEach(function (r) { body.appendChild(r.row); });
    });
    refreshCsv(table);
  }
  function sortable(table) {
    var head = table.tHead;
    if (!head || !head.rows.length || !table.tBodies.length) return;
    Array.prototype.forEach.call(head.rows[head.rows.length - 1].cells, function (th, col) {
      if (th.colSpan > 1) return;
      th.setAttribute("data-label", text(th));
      var b = doc.createElement("button");
      b.type = "button";
      b.className = "sort";
      b.title = "Sort by this column";
      while (th.firstChild) b.appendChild(th.firstChild);
      th.appendChild(b);
      b.addEventListener("click", function () { sortBy(table, th, col); });
    });
  }

  /* Every table scrolls in its own box, says when it is cut and gets a CSV link. */
  var wraps = [];
  function checkOverflow() {
    wraps.forEach(function (w) {
      var cut = w.scrollWidth > w.clientWidth + 1;
      w.classList.toggle("overflows", cut);
      if (w.hint) w.hint.hidden = !cut;
    });
  }
  function tables() {
    var counts = {};
    Array.prototype.forEach.call(doc.querySelectorAll("main table"), function (table) {
      var wrap = table.parentNode;
      if (!wrap.classList || !wrap.classList.contains("table-wrap")) {
        wrap = doc.createElement("div");
        wrap.className = "table-wrap";
        table.parentNode.insertBefore(wrap, table);
        wrap.appendChild(table);
      }
      var sec = table.closest("section"), key = sec && sec.id ? sec.id : "table";
      counts[key] = (counts[key] || 0) + 1;
      var hint = doc.createElement("p");
      hint.className = "scroll-hint";
      hint.hidden = true;
      hint.textContent = "Scroll sideways for more columns \u2192";
      wrap.parentNode.insertBefore(hint, wrap);
      wrap.hint = hint;
      var tools = doc.createElement("p"), a = doc.createElement("a");
      tools.className = "table-tools";
      a.className = "csv";
      a.download = (table.id || key + "-" + counts[key]) + ".csv";
      a.textContent = "Download this table (CSV)";
      tools.appendChild(a);
      wrap.parentNode.insertBefore(tools, wrap.nextSibling);
      table.csvLink = a;
      sortable(table);
      refreshCsv(table);
      wraps.push(wrap);
    });
    checkOverflow();
    window.addEventListener("resize", checkOverflow);
  }

  /* Before printing, mark each table that cannot fit the A4 column even with its words wrapped:
     its min-content width in the print's type, against A4 less the @page side margins and a
     little room (a table within a scrollbar's width of the edge is fitted too). */
  var PRINT_WIDTH = (210 - 2 * 14) * 96 / 25.4 - 16;
  function fitForPrint() {
    root.classList.add("print-measure");
    wraps.forEach(function (w) {
      var t = w.querySelector("table");
      t.classList.remove("fit");
      t.style.width = "min-content";
      var wide = t.offsetWidth > PRINT_WIDTH;
      t.style.width = "";
      t.classList.toggle("fit", wide);
    });
    root.classList.remove("print-measure");
  }

  /* Folded sections (<details> in the template): a link into one opens it; printing opens
     every closed one and closes it again after. */
  function reveal(id) {
    var el = id && doc.getElementById(id), d = el && (el.querySelector(":scope > details.fold") || el.closest("details"));
    if (d) d.open = true;
  }
  var reopen = [];
  function openForPrint() {
    reopen = Array.prototype.filter.call(doc.querySelectorAll("main details"), function (d) { return !d.open; });
    reopen.forEach(function (d) { d.open = true; });
    fitForPrint();
  }
  function afterPrint() {
    reopen.forEach(function (d) { d.open = false; });
    reopen = [];
    doc.body.classList.remove("print-summary");
  }

  /* Contents: on a phone one button opens the list; the current section is named beside it. */
  function contents() {
    var nav = doc.getElementById("toc"), btn = nav && nav.querySelector(".toc-toggle");
    if (!btn) return;
    var here = btn.querySelector(".toc-here");
    function close() { nav.classList.remove("open"); btn.setAttribute("aria-expanded", "false"); }
    btn.addEventListener("click", function () {
      var open = !nav.classList.contains("open");
      nav.classList.toggle("open", open);
      btn.setAttribute("aria-expanded", String(open));
    });
    nav.addEventListener("click", function (e) { if (e.target.closest("a")) close(); });
    doc.addEventListener("keydown", function (e) { if (e.key === "Escape" && nav.classList.contains("open")) { close(); btn.focus(); } });
    doc.addEventListener("click", function (e) { if (!nav.contains(e.target)) close(); });
    var links = {};
    Array.prototype.forEach.call(nav.querySelectorAll(".toc-list a"), function (a) { links[a.hash.slice(1)] = a; });
    if (!("IntersectionObserver" in window)) return;
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        var a = links[e.target.id];
        if (!e.isIntersecting || !a) return;
        Object.keys(links).forEach(function (k) { links[k].removeAttribute("aria-current"); });
        a.setAttribute("aria-current", "true");
        here.textContent = text(a);
      });
    }, { rootMargin: "-10% 0px -80% 0px" });
    Array.prototype.forEach.call(doc.querySelectorAll("main > section[id]"), function (s) { seen.observe(s); });
  }

  /* Printing the board summary alone: a class on body for the print, taken off after it. */
  function boardPrint() {
    var b = doc.getElementById("print-summary");
    if (!b || !doc.getElementById("summary")) return;
    b.hidden = false;
    if (b.parentNode.hidden) b.parentNode.hidden = false;
    b.addEventListener("click", function () {
      doc.body.classList.add("print-summary");
      window.print();
    });
  }

  tables();
  contents();
  boardPrint();
  doc.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest('a[href^="#"]');
    if (a) reveal(a.getAttribute("href").slice(1));
  });
  window.addEventListener("beforeprint", openForPrint);
  window.addEventListener("afterprint", afterPrint);
  doc.addEventListener("toggle", function (e) { if (e.target.open) checkOverflow(); }, true);
  window.addEventListener("hashchange", function () { reveal(location.hash.slice(1)); });
  reveal(location.hash.slice(1));
  if (location.hash) { var t = doc.getElementById(location.hash.slice(1)); if (t) t.scrollIntoView(); }
})();
