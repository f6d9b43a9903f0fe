// The console works without this file: it only adds each time's local equivalent as
// a tooltip (times are shown in UTC).
document.querySelectorAll("time[datetime]").forEach(function (el) {
  var at = new Date(el.getAttribute("datetime"));
  if (!isNaN(at.getTime())) {
    el.title = "your local time: " + at.toLocaleString();
  }
});
