// One order's page: a one-time notice leaves the address (a reload does not repeat it), and
// the refunds card and status follow the order live until its refunds are settled.
(function () {
  "use strict";
  var main = document.getElementById("order-live");
  if (!main) { return; }
  if (location.search.indexOf("done=") >= 0 && window.history.replaceState) {
    var url = new URL(location.href);
    url.searchParams.delete("done");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  if (!window.EventSource || main.dataset.settled === "true") { return; }
  var last = main.dataset.state;
  var stream = new EventSource("/api/orders/" + encodeURIComponent(main.dataset.order) + "/events");

  function key(o) {
    return [o.status, o.dispensed, o.refund ? o.refund.amount + ":" + o.refund.status : ""].join("|");
  }

  // The server renders the page; swap in its fresh parts rather than drawing them twice.
  async function swap() {
    var res = await fetch(location.pathname, { credentials: "same-origin" });
    if (!res.ok) { return; }
    var fresh = new DOMParser().parseFromString(await res.text(), "text/html");
    ["order-status", "refunds-card"].forEach(function (id) {
      var now = document.getElementById(id), next = fresh.getElementById(id);
      if (now && next) { now.replaceWith(next); }
    });
    var again = fresh.getElementById("order-live");
    if (again && again.dataset.settled === "true") { stream.close(); }
  }

  stream.addEventListener("order", function (event) {
    var state = key(JSON.parse(event.data));
    if (state !== last) { last = state; swap(); }
  });
})();
