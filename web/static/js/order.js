/* The order page: follows the order live (Server-Sent Events) until it ends. */
(function () {
  "use strict";
  var main = document.getElementById("main");
  var order = JSON.parse(main.dataset.order);
  var $ = function (id) { return document.getElementById(id); };
  var stream = null, poller = null, shown = "";

  function ended(o) {
    return ["dispensed", "refunded", "expired", "failed", "refund_pending"].indexOf(o.status) >= 0;
  }

  function finished(o) {
    return ended(o) && o.status !== "refund_pending" && (!o.refund || o.refund.status !== "pending");
  }

  function items(n) { return n + (n === 1 ? " item" : " items"); }
  function takeThem(n) { return "Take " + (n === 1 ? "it" : "them") + " from the tray."; }

  /* A payment refunded in full before anything was dispensed, and why, in the shopper's words. */
  var RETURNED = {
    late_payment: ["Your reservation ran out", "Your reservation ran out before the payment arrived"],
    insufficient_stock: ["Sold out before your payment arrived", "The machine sold out before the payment arrived"],
    wrong_amount: ["The payment didn't match the order", "The amount paid wasn't the order's amount"],
  };

  function returned(o) {
    var why = o.refund && RETURNED[o.refund.reason];
    if (!why) return null;
    var done = o.refund.status === "processed";
    return [why[0], why[1] + (done ? "; the full amount has been refunded." : "; the full amount is being refunded."), "problem"];
  }

  function describe(o) {
    var n = o.dispensed, q = o.quantity;
    var early = o.status !== "created" && returned(o);
    if (early) return early;
    switch (o.status) {
      case "created": return ["Waiting for payment", "We haven't received your payment yet. If you have paid, this page updates by itself.", ""];
      case "paid": return ["Payment received", "Starting the machine…", ""];
      case "dispensing":
        if (n === 0) return ["Dispensing 0 of " + q + "…", "The machine is starting. Please wait at the machine and take your items from the tray.", ""];
        return ["Dispensing " + n + " of " + q + "…", items(n) + " out so far. Please wait at the machine and take your items from the tray.", ""];
      case "dispensed": return ["Done. Enjoy!", items(q) + " dispensed. " + takeThem(q), "done"];
      case "expired":
        if (!o.refund) return ["Not paid", "No payment went through for this order, so nothing was charged. Enter the code on the machine again to buy.", "problem"];
        return ["Payment arrived too late", "The reservation had already ended, so nothing was dispensed and your payment is being returned.", "problem"];
      default:
        if (!o.refund) return ["This order didn't go through", "Nothing was charged.", "problem"];
        if (n >= q) return ["Done. Enjoy!", items(q) + " dispensed. " + takeThem(q), "done"];
        if (n > 0) return ["Only " + n + " of " + q + " came out", "The machine couldn't dispense the rest. Take what came out from the tray.", "problem"];
        return ["The machine couldn't dispense", "Nothing came out, so you get your money back.", "problem"];
    }
  }

  var BANK = " It goes back to the account you paid with; banks usually show it within 5–7 working days.";

  function goodwillText(o, manual) {
    var amount = SV.money(manual, o.currency), paid = SV.money(o.amount, o.currency);
    var r = o.refund;
    if (r.status === "processed") return "The machine's operator has refunded " + amount + " of the " + paid + " you paid, as a goodwill gesture." + BANK;
    if (r.status === "failed") return "The machine's operator tried to refund you " + amount + ", but the refund didn't go through. They have been alerted; keep your order number.";
    return "The machine's operator is refunding " + amount + " of the " + paid + " you paid, as a goodwill gesture. This page updates when it's sent.";
  }

  function refundText(o) {
    var r = o.refund, manual = r.manual_amount || 0, automatic = r.amount - manual;
    if (automatic <= 0) return goodwillText(o, manual);
    var amount = SV.money(automatic, o.currency);
    var what = o.dispensed < o.quantity && o.status !== "expired" && !RETURNED[r.reason]
      ? " for the " + items(o.quantity - o.dispensed) + " that didn't come out"
      : "";
    var extra = manual > 0 ? " The machine's operator has also refunded " + SV.money(manual, o.currency) + " by hand." : "";
    var summary = "You paid " + SV.money(o.amount, o.currency) + " and get " + SV.money(r.amount, o.currency) + " back. ";
    if (r.status === "processed") return summary + "We have refunded " + amount + what + "." + extra + BANK;
    if (r.status === "failed") return summary + "We couldn't send the refund automatically. We have been alerted and will sort it out; keep your order number.";
    return summary + "We are refunding " + amount + what + "." + extra + " This page updates when it's sent.";
  }

  /* One line per unit: out, coming out, waiting, or not dispensed. */
  function renderItems(o) {
    var list = $("items");
    var active = o.status === "paid" || o.status === "dispensing";
    list.hidden = o.quantity < 2 || !(active || o.dispensed > 0);
    while (list.children.length > o.quantity) list.removeChild(list.lastChild);
    while (list.children.length < o.quantity) list.appendChild(document.createElement("li"));
    for (var i = 1; i <= o.quantity; i++) {
      var state, text;
      if (i <= o.dispensed) { state = "out"; text = "out"; }
      else if (active && i === o.dispensed + 1 && o.status === "dispensing") { state = "next"; text = "coming out…"; }
      else if (active) { state = "waiting"; text = "waiting"; }
      else { state = "missed"; text = "didn't come out"; }
      var li = list.children[i - 1];
      li.className = "item-" + state;
      SV.say(li, "Item " + i + " of " + o.quantity + ": " + text);
    }
  }

  /* Several products: one line per product, "A1 Cola: 2 of 2 out". */
  function renderLines(o) {
    var list = $("lines");
    var many = (o.lines || []).length > 1;
    list.hidden = !many || o.status === "created";
    if (!many) return;
    var active = o.status === "paid" || o.status === "dispensing";
    while (list.children.length > o.lines.length) list.removeChild(list.lastChild);
    while (list.children.length < o.lines.length) list.appendChild(document.createElement("li"));
    o.lines.forEach(function (line, i) {
      var li = list.children[i];
      var head = line.slot + " " + line.product.name + ": ";
      var text, state;
      if (line.dispensed >= line.quantity) { state = "out"; text = line.dispensed + " of " + line.quantity + " out"; }
      else if (active) { state = line.dispensed > 0 ? "next" : "waiting"; text = line.dispensed + " of " + line.quantity + " out…"; }
      else {
        state = "missed";
        text = line.dispensed + " of " + line.quantity + " out, " +
          SV.money((line.quantity - line.dispensed) * line.unit_amount, o.currency) + " refunded";
      }
      li.className = "item-" + state;
      li.dataset.slot = line.slot;
      SV.say(li, head + text);
    });
    if (many) $("items").hidden = true;
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
    $("progress-box").hidden = o.status === "created" || (o.status === "expired" && !o.refund) || !!returned(o);
    renderItems(o);
    renderLines(o);
    $("refund").hidden = !o.refund;
    if (o.refund) {
      SV.say($("refund-title"), (o.refund.manual_amount || 0) >= o.refund.amount ? "A refund from the operator" : "Your refund");
      SV.say($("refund-detail"), refundText(o));
    }
    $("feedback").hidden = !(ended(o) && o.status !== "expired" && mayRate !== false);
    if (ended(o) && mayRate === null) loadFeedback();
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

  /* Feedback goes to the machine's operator, once per order, from the phone that paid. */
  var feedbackKey = "sv_feedback_" + order.order_id;
  var form = $("feedback-form"), chosen = null;
  var mayRate = null;  /* null: not asked yet; the server says who may rate and what was given */

  async function loadFeedback() {
    mayRate = undefined;  /* asking */
    var res = await SV.api("GET", "/api/orders/" + encodeURIComponent(order.order_id) +
      "/feedback?client_id=" + encodeURIComponent(SV.clientId()));
    if (!res.ok) { mayRate = null; return; }
    var given = res.data.feedback;
    mayRate = res.data.yours;
    if (given) {
      sent(given.rating);
      $("feedback-comment").value = given.comment || "";
      SV.say($("feedback-count"), (given.comment || "").length + " of 500 characters");
    }
    shown = "";
    render(order);
  }

  function choose(vote) {
    chosen = vote;
    document.querySelectorAll("[data-vote]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.vote === vote));
    });
  }

  function sent(vote) {
    choose(vote);
    form.querySelectorAll("button, textarea").forEach(function (el) { el.disabled = true; });
    $("feedback-send").hidden = true;
    SV.say($("feedback-error"), "");
    SV.say($("feedback-thanks"), "Thanks! The machine's operator reads every rating.");
  }

  document.querySelectorAll("[data-vote]").forEach(function (b) {
    b.addEventListener("click", function () { choose(b.dataset.vote); SV.say($("feedback-error"), ""); });
  });
  $("feedback-comment").addEventListener("input", function () {
    SV.say($("feedback-count"), $("feedback-comment").value.length + " of 500 characters");
  });
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (!chosen) { SV.say($("feedback-error"), "Choose Good or Not good first."); return; }
    var comment = $("feedback-comment").value.trim();
    $("feedback-send").disabled = true;
    var res = await SV.api("POST", "/api/orders/" + encodeURIComponent(order.order_id) + "/feedback",
      { client_id: SV.clientId(), rating: chosen, comment: comment || null });
    $("feedback-send").disabled = false;
    if (res.ok || SV.errorCode(res) === "feedback_exists") {
      SV.store.set(feedbackKey, res.ok ? chosen : "sent");
      sent(res.ok ? chosen : null);
      if (!res.ok) SV.say($("feedback-thanks"), "You have already rated this order. Thanks!");
      return;
    }
    var code = SV.errorCode(res);
    var why = code === "not_order_owner" ? "Only the phone that paid for this order can rate it."
      : code === "rate_limited" ? "Too many ratings from here. Please wait " + SV.duration(res.retryAfter || 60) + " and try again."
      : SV.explain(res);
    SV.say($("feedback-error"), why);
  });
  var given = SV.store.get(feedbackKey);
  if (given) sent(given === "sent" ? null : given);

  render(order);
  poll().then(follow);
})();
