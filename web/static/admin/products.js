// A product's picture goes straight to the JSON API (the dashboard's session cookie
// signs the request); the server checks the file's first bytes and its size.
"use strict";
for (const form of document.querySelectorAll("form.image-upload")) {
  const input = form.querySelector("input[type=file]");
  const status = form.querySelector(".upload-status");
  input.addEventListener("change", async () => {
    const file = input.files[0];
    if (!file) return;
    status.textContent = "Uploading…";
    const answer = await fetch(`/api/products/${encodeURIComponent(form.dataset.product)}/image`, {
      method: "PUT",
      body: file,
      credentials: "same-origin",
    });
    if (answer.ok) {
      location.reload();
    } else {
      const body = await answer.json().catch(() => ({}));
      status.textContent = (body.error && body.error.message) || "The upload failed.";
    }
  });
}
