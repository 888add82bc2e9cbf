// Live fleet rows from /admin/events (Server-Sent Events); text only, never HTML.
(function () {
  "use strict";
  var table = document.getElementById("fleet");
  var live = document.getElementById("live");
  if (!table || !window.EventSource) { return; }
  var body = table.tBodies[0];
  // Each cell says what it is, for the phone layout where rows become cards.
  var labels = Array.prototype.map.call(table.tHead.rows[0].cells, function (th) { return th.textContent; });

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function cell(row) {
    var td = el("td");
    td.dataset.label = labels[row.cells.length] || "";
    for (var i = 1; i < arguments.length; i++) { td.appendChild(arguments[i]); }
    row.appendChild(td);
    return td;
  }

  function render(rows) {
    var fresh = document.createDocumentFragment();
    rows.forEach(function (r) {
      var tr = el("tr", null, r.status + (r.low ? " low" : ""));
      tr.dataset.mid = r.id;
      var link = el("a", r.name);
      link.href = "/admin/machines/" + encodeURIComponent(r.id);
      cell(tr, link, el("br"), el("small", r.id + (r.location ? " · " + r.location : "")));
      cell(tr, el("span", r.status, "pill " + r.status));
      cell(tr, document.createTextNode(r.last_seen));
      var meter = el("meter");
      meter.min = 0; meter.max = r.capacity; meter.low = r.threshold + 1;
      meter.optimum = r.capacity; meter.value = r.stock;
      var stock = cell(tr, meter, document.createTextNode(" "), el("span", r.stock + "/" + r.capacity, "count"));
      stock.className = "stock";
      if (r.low) { stock.appendChild(document.createTextNode(" ")); stock.appendChild(el("span", "low", "pill warn")); }
      cell(tr, document.createTextNode(r.price));
      cell(tr, document.createTextNode(r.mode), el("br"),
           el("small", "reported: " + r.reported_mode + (r.applied ? "" : " · update pending")));
      cell(tr, document.createTextNode(r.busy ? "yes" : "no"));
      cell(tr, document.createTextNode(r.fw));
      cell(tr, document.createTextNode(r.sales + " "), el("small", "(" + r.units + ")"));
      cell(tr, document.createTextNode(r.ratings)).className = "ratings";
      fresh.appendChild(tr);
    });
    if (!rows.length) {
      var empty = el("tr", null, "empty");
      var td = el("td", "No machines to show.");
      td.colSpan = 10;
      empty.appendChild(td);
      fresh.appendChild(empty);
    }
    body.replaceChildren(fresh);
  }

  var source = new EventSource(table.dataset.events);
  source.addEventListener("fleet", function (event) {
    render(JSON.parse(event.data));
    live.textContent = "live";
    live.className = "live on";
    table.dataset.updated = String(Date.now());
  });
  source.onerror = function () { live.textContent = "reconnecting…"; live.className = "live"; };
})();
