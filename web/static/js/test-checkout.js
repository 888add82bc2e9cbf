/* The built-in TEST MODE checkout: plays the payment page's part, then verifies like Razorpay's handler. */
(function () {
  "use strict";
  var main = document.getElementById("main");
  var orderId = main.dataset.order, gatewayOrderId = main.dataset.gatewayOrder;
  var pay = document.getElementById("pay"), fail = document.getElementById("fail");
  var status = document.getElementById("checkout-status"), error = document.getElementById("checkout-error");
  if (!pay) return;
  var payTime = document.getElementById("pay-time");
  var holdUntil = parseInt(main.dataset.holdUntil, 10), over = false;

  function busy(on) { pay.disabled = on || over; fail.disabled = on || over; }

  /* Like Razorpay's checkout with its timeout: the page keeps the reservation while it is
     open and closes when the time to pay is over. */
  var keeper = SV.keepReservation(main.dataset.machine, main.dataset.session, function (hold) {
    holdUntil = hold.hold_until;
    tick();
  }, function (code) {
    /* Not kept any more: the time left is the reservation's own. */
    if (code === "session_expired") holdUntil = SV.now() + SV.PAY_MARGIN_S;
    else holdUntil = Math.min(holdUntil, parseInt(main.dataset.expires, 10) || holdUntil);
    tick();
  });
  var timer = setInterval(tick, 1000);

  function tick() {
    if (over) return;
    var left = SV.payWindow(holdUntil);
    SV.say(payTime, SV.clock(left));
    if (left > 0) return;
    over = true;
    clearInterval(timer);
    keeper.stop();
    busy(true);
    SV.say(status, "");
    SV.say(error, "The time to pay ran out, so nothing was charged. Go back to the machine to start again.");
  }
  tick();

  async function checkout(outcome) {
    busy(true);
    SV.say(error, "");
    SV.say(status, outcome === "pay" ? "Paying…" : "Failing the payment…");
    var res = await SV.api("POST", "/api/test-gateway/checkout", { gateway_order_id: gatewayOrderId, outcome: outcome });
    if (!res.ok && SV.errorCode(res) !== "payment_failed") {
      SV.say(status, "");
      SV.say(error, SV.explain(res));
      busy(false);
      return;
    }
    if (!res.ok || !res.data.razorpay_signature) {
      SV.say(status, "");
      SV.say(error, "The payment failed, so nothing was charged. You can try again or go back to the machine.");
      busy(false);
      pay.focus();
      return;
    }
    keeper.stop();
    clearInterval(timer);
    SV.say(status, "Payment done. Confirming it…");
    var verified = await SV.api("POST", "/verify-payment", {
      razorpay_order_id: res.data.razorpay_order_id,
      razorpay_payment_id: res.data.razorpay_payment_id,
      razorpay_signature: res.data.razorpay_signature,
    });
    if (!verified.ok) {
      SV.say(status, "");
      SV.say(error, SV.explain(verified));
      return;
    }
    location.href = "/orders/" + encodeURIComponent(verified.data.order_id || orderId);
  }

  pay.addEventListener("click", function () { checkout("pay"); });
  fail.addEventListener("click", function () { checkout("fail"); });
})();
