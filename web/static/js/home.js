/* The machine finder: unlock a machine with only the code on its display. */
(function () {
  "use strict";
  var form = document.getElementById("code-form");
  var input = document.getElementById("code");
  var error = document.getElementById("code-error");
  var button = form.querySelector("button");

  var last = SV.store.get("sv_last_order");
  if (last && last.order_id) {
    var note = document.getElementById("last-order");
    var link = document.createElement("a");
    link.href = "/orders/" + encodeURIComponent(last.order_id);
    link.textContent = "See your last order";
    note.appendChild(link);
    note.hidden = false;
  }

  SV.codeField(input);
  input.addEventListener("input", function () { input.removeAttribute("aria-invalid"); SV.say(error, ""); });

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    var code = SV.cleanCode(input.value);
    if (!/^[0-9]{6}$/.test(code)) {
      SV.say(error, "Enter the 6 digits shown on the machine's display.");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    button.disabled = true;
    SV.say(error, "");
    var res = await SV.api("POST", "/api/lock-by-code", { code: code, client_id: SV.clientId() });
    if (res.ok) {
      SV.store.set(SV.lockKey(res.data.machine_id), res.data);
      location.href = "/m/" + encodeURIComponent(res.data.machine_id);
      return;
    }
    input.setAttribute("aria-invalid", "true");
    if (SV.errorCode(res) === "rate_limited") {
      SV.waitOut(error, button, res.retryAfter || 60);
    } else {
      SV.say(error, SV.explain(res));
      button.disabled = false;
    }
    input.focus();
  });
})();
