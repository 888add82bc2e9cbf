/* The machine page's view of the machine itself: its badge, the status sentence, the
   unlock form (off, and why, while the machine can't be unlocked) and, in dev mode, what
   a simulated display shows. machine.js feeds it every public status it reads. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var codeForm = $("code-form"), codeInput = $("code"), unlockBtn = $("unlock"), notice = $("notice");
  /* The form is off while the machine can't be unlocked (blocked says why), while a wait
     after too many wrong codes runs, and while a code is being checked. */
  var blocked = "", waitingOut = false, sending = false;
  var statusNotice = "", quiet = false;

  function syncForm() {
    codeInput.disabled = !!blocked;
    $("code-hint").hidden = !!blocked;
    unlockBtn.disabled = !!blocked || waitingOut || sending;
    codeForm.classList.toggle("off", !!blocked);
    SV.say($("code-off"), blocked);
  }

  /* Why the code can't unlock the machine now ("" when it can). */
  function blockedFor(s, locked) {
    if (locked || s.locked_by_you) return "";
    if (s.mode === "out_of_service") return "Unlocking is off while the machine is out of service. This page updates by itself.";
    if (!s.online) return "Unlocking is off until the machine is back online. This page updates by itself.";
    if (s.locked) return "Unlocking is off while someone else uses the machine. This page updates when they finish.";
    if (s.stock < 1) return "Unlocking is off: the machine is sold out.";
    return "";
  }

  function noticeFor(s) {
    if (s.locked_by_you) return "";
    if (s.mode === "out_of_service") return "This machine is out of service right now.";
    if (!s.online) return "This machine is offline right now, so it can't sell.";
    if (s.mode === "error") return "This machine reports a problem right now and may not be able to sell.";
    if (s.stock < 1) return "This machine is sold out.";
    if (s.locked) return "Someone is using this machine right now. It will show a new code when they finish.";
    return "";
  }

  /* The status sentence follows the machine; other messages (cancelled, ran out) stay
     until the status itself changes. */
  function followNotice(s, locked) {
    var text = locked || quiet ? "" : noticeFor(s);
    if (text === statusNotice) return;
    if (text || notice.textContent === statusNotice) SV.say(notice, text);
    statusNotice = text;
  }

  /* Dev mode: what the simulated machine's display shows now. */
  function showDisplay(s) {
    var note = $("demo-display");
    if (!note || !("display_code" in s)) return;
    if (note.dataset.code === String(s.display_code)) return;
    note.dataset.code = String(s.display_code);
    var text = "Dev mode: this simulated machine's display shows ";
    if (!s.display_code) { note.replaceChildren(text + "no code right now."); return; }
    var code = document.createElement("strong");
    code.className = "code";
    code.textContent = s.display_code;
    note.replaceChildren(text, code, ".");
  }

  window.SVStatus = {
    /* A public status; locked: this page holds the machine. */
    show: function (s, locked) {
      var badge = document.createElement("span");
      badge.className = "badge " + (s.online && s.mode !== "out_of_service" ? "on" : "off");
      badge.textContent = s.mode === "out_of_service" ? "Out of service" : s.online ? "Online" : "Offline";
      $("machine-online").replaceChildren(badge);
      SV.say($("machine-stock"), s.stock > 0 ? s.stock + " in stock" : "Sold out");
      blocked = blockedFor(s, locked);
      syncForm();
      showDisplay(s);
      followNotice(s, locked);
    },
    noticeFor: noticeFor,
    /* Stands in for the Unlock button in SV.waitOut: the wait is one reason among others. */
    rateGate: { set disabled(on) { waitingOut = on; syncForm(); } },
    sending: function (on) { sending = on; syncForm(); },
    /* While on, the page says something of its own (a reservation ran out). */
    quiet: function (on) { quiet = on; },
    /* The status sentence now shown is the page's own: keep it until the status changes. */
    settle: function (s) { statusNotice = s ? noticeFor(s) : ""; },
  };
})();
