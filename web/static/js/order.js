/* The order page: follows the order live (Server-Sent Events) until it ends. */
(function () {
  "use strict";
  var main = document.getElementById("main");
  var order = JSON.parse(main.dataset.order);
  var $ = function (id) { return document.getElementById(id); };
  var stream = null, poller = null, shown = "";

  function finished(o) {
    var ended = ["dispensed", "refunded", "expired", "failed"].indexOf(o.status) >= 0;
    return ended && (!o.refund || o.refund.status !== "pending");
  }

  function items(n) { return n + (n === 1 ? " item" : " items"); }

  function describe(o) {
    var n = o.dispensed, q = o.quantity;
    switch (o.status) {
      case "created": return ["Waiting for payment", "We haven't received your payment yet. If you have paid, this page updates by itself.", ""];
      case "paid": return ["Payment received", "Starting the machine…", ""];
      case "dispensing": return ["Dispensing " + n + " of " + q + "…", "Please wait at the machine and take your items from the tray.", ""];
      case "dispensed": return ["Done. Enjoy!", items(q) + " dispensed. Take them from the tray.", "done"];
      case "expired":
        if (!o.refund) return ["Order expired", "It wasn't paid in time, so nothing was charged. Enter the code on the machine again to buy.", "problem"];
        return ["Payment arrived too late", "The reservation had already ended, so nothing was dispensed and your payment is being returned.", "problem"];
      default:
        if (!o.refund) return ["This order didn't go through", "Nothing was charged.", "problem"];
        if (n > 0) return ["Only " + n + " of " + q + " came out", "The machine couldn't dispense the rest. Take what came out from the tray.", "problem"];
        return ["The machine couldn't dispense", "Nothing came out, so you get your money back.", "problem"];
    }
  }

  function refundText(o) {
    var r = o.refund, amount = SV.money(r.amount, o.currency);
    var what = o.dispensed < o.quantity && o.status !== "expired"
      ? " for the " + items(o.quantity - o.dispensed) + " that didn't come out"
      : "";
    var summary = "You paid " + SV.money(o.amount, o.currency) + " and get " + amount + " back. ";
    if (r.status === "processed") return summary + "We have refunded " + amount + what + ". It goes back to the account you paid with; banks usually show it within 5–7 working days.";
    if (r.status === "failed") return summary + "We couldn't send the refund automatically. We have been alerted and will sort it out; keep your order number.";
    return summary + "We are refunding " + amount + what + ". This page updates when it's sent.";
  }

  function render(o) {
    var key = JSON.stringify(o);
    if (key === shown) return;
    shown = key;
    order = o;
    var d = describe(o);
    SV.say($("state-title"), d[0]);
    SV.say($("state-detail"), d[1]);
    $("state").parentNode.className = "card" + (d[2] ? " state-" + d[2] : "");
    $("progress").max = o.quantity;
    $("progress").value = o.dispensed;
    SV.say($("progress-text"), o.dispensed + " of " + o.quantity);
    $("progress-box").hidden = o.status === "created" || (o.status === "expired" && !o.refund);
    $("refund").hidden = !o.refund;
    if (o.refund) SV.say($("refund-detail"), refundText(o));
    $("feedback").hidden = !(finished(o) && o.dispensed > 0);
    if (finished(o)) stop();
  }

  function stop() {
    if (stream) { stream.close(); stream = null; }
    if (poller) { clearInterval(poller); poller = null; }
  }

  async function poll() {
    var res = await SV.api("GET", "/api/orders/" + encodeURIComponent(order.order_id));
    if (res.ok) render(res.data);
  }

  function follow() {
    if (finished(order)) return;
    if (!window.EventSource) { poller = setInterval(poll, 3000); return; }
    stream = new EventSource("/api/orders/" + encodeURIComponent(order.order_id) + "/events");
    stream.addEventListener("order", function (event) { render(JSON.parse(event.data)); });
    stream.onerror = function () {
      if (stream && stream.readyState === EventSource.CLOSED) {
        stream = null;
        if (!poller && !finished(order)) poller = setInterval(poll, 3000);
      }
    };
  }

  /* Feedback stays in this browser only. */
  var feedbackKey = "sv_feedback_" + order.order_id;
  function showVote(vote) {
    document.querySelectorAll("[data-vote]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.vote === vote));
    });
    if (vote) SV.say($("feedback-thanks"), "Thanks for telling us!");
  }
  document.querySelectorAll("[data-vote]").forEach(function (b) {
    b.addEventListener("click", function () {
      SV.store.set(feedbackKey, b.dataset.vote);
      showVote(b.dataset.vote);
    });
  });
  showVote(SV.store.get(feedbackKey));

  render(order);
  poll().then(follow);
})();
