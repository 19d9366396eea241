<?php
// The PHP baseline's load: GET ?key=KEY; the stored document, read under
// a shared lock. 404 for a malformed or unknown key.
header('Content-Type: application/json');
header('Cache-Control: no-store');
$dir = getenv('SESSIONS_DIR');
$key = strtoupper($_GET['key'] ?? '');
$f = preg_match('/^[A-Z0-9]{8}$/', $key) ? @fopen("$dir/$key.json", 'r') : false;
if (!$f) {
    http_response_code(404);
    exit('{"error":"not_found","message":"No such session."}');
}
flock($f, LOCK_SH);
$doc = stream_get_contents($f);
flock($f, LOCK_UN);
fclose($f);
echo $doc;
