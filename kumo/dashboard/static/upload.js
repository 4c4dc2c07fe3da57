// Streams the chosen file to the dashboard (which streams it on to Glance) with a progress bar:
// XMLHttpRequest is the browser API that reports upload progress. The CSRF token goes in a header.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = form.querySelector("input[type=file]").files[0];
    const bar = document.getElementById("upload-progress");
    const result = document.getElementById("upload-result");
    if (!file) return;
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", form.dataset.url);
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total); };
    xhr.onload = () => {
      if (xhr.status === 204) { bar.value = 100; result.textContent = "Uploaded."; window.location.reload(); return; }
      let message = xhr.statusText;
      try { message = JSON.parse(xhr.responseText).message || message; } catch (_) {}
      result.textContent = xhr.status + ": " + message;
    };
    xhr.onerror = () => { result.textContent = "The upload failed: the connection was lost."; };
    result.textContent = "Uploading…";
    xhr.send(file);
  });
});
