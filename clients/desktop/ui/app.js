// The app's own page: choose a gateway (the CLI's profiles), sign in, and say when the gateway
// cannot be reached. The console itself is the gateway's; the app navigates there once signed in.
const { invoke } = window.__TAURI__.core;
const RETRY_MS = 5000;

const $ = (id) => document.getElementById(id);
let probing = null;

function showOffline(gateway) {
  $('offline').hidden = false;
  $('offline-gateway').textContent = gateway || 'The gateway';
}

async function checkReachable() {
  const gateway = $('gateway').value;
  clearTimeout(probing);
  try {
    const reachable = await invoke('probe', { gateway });
    $('reachability').textContent = reachable ? '' : `${gateway} does not answer; trying again every 5 seconds.`;
    if (!reachable) probing = setTimeout(checkReachable, RETRY_MS);
  } catch (error) {
    $('reachability').textContent = String(error);
  }
}

async function loadProfiles() {
  const { profiles, default_profile: chosen } = await invoke('profiles');
  const select = $('profile');
  for (const profile of profiles) select.add(new Option(`${profile.name} (${profile.gateway})`, profile.name));
  select.add(new Option('New profile', ''));
  const pick = (name) => {
    const profile = profiles.find((candidate) => candidate.name === name);
    $('profile-name').value = profile ? profile.name : '';
    $('profile-name').readOnly = Boolean(profile);
    if (profile) $('gateway').value = profile.gateway;
  };
  select.addEventListener('change', () => { pick(select.value); checkReachable(); });
  const first = profiles.find((profile) => profile.name === chosen) ?? profiles[0];
  select.value = first ? first.name : '';
  pick(select.value);
}

$('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('error').textContent = '';
  $('sign-in').disabled = true;
  try {
    await invoke('sign_in', {
      profile: $('profile-name').value,
      gateway: $('gateway').value,
      email: $('email').value,
      password: $('password').value,
    });
  } catch (error) {
    $('error').textContent = String(error);
  } finally {
    $('sign-in').disabled = false;
  }
});

async function start() {
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash === 'offline') {
    const status = await invoke('status');
    showOffline(status.gateway);
    $('sign-in-form').hidden = true;
    return;
  }
  if (hash.startsWith('signed-out:')) $('error').textContent = `Signed out: ${hash.slice('signed-out:'.length)}`;
  await loadProfiles();
  await checkReachable();
}

start().catch((error) => { $('error').textContent = String(error); });
