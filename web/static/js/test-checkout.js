/* The built-in TEST MODE checkout: plays the payment page's part, then verifies like Razorpay's handler. */
(function () {
  "use strict";
  var main = document.getElementById("main");
  var orderId = main.dataset.order, gatewayOrderId = main.dataset.gatewayOrder;
  var pay = document.getElementById("pay"), fail = document.getElementById("fail");
  var status = document.getElementById("checkout-status"), error = document.getElementById("checkout-error");
  if (!pay) return;

  function busy(on) { pay.disabled = on; fail.disabled = on; }

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
