// The web app's entry point.
document.documentElement.dataset.ready = 'true';
