<?php
// The PHP baseline's save: POST {"key":KEY, "data":...?, "meta":{...}?}.
// Opens with c+, takes the exclusive lock, reads, merges meta, bumps the
// version, truncates, rewinds and writes in place (no fsync), unlocks.
// Answers {"key","version"}.
header('Content-Type: application/json');
header('Cache-Control: no-store');
$dir = getenv('SESSIONS_DIR');
$in = json_decode(file_get_contents('php://input'), true);
$key = is_array($in) && is_string($in['key'] ?? null) ? strtoupper($in['key']) : '';
if (!preg_match('/^[A-Z0-9]{8}$/', $key) || !is_file("$dir/$key.json")) {
    http_response_code(404);
    exit('{"error":"not_found","message":"No such session."}');
}
$f = fopen("$dir/$key.json", 'c+');
flock($f, LOCK_EX);
$doc = json_decode(stream_get_contents($f), true);
if (!is_array($doc)) {
    flock($f, LOCK_UN);
    fclose($f);
    http_response_code(500);
    exit('{"error":"internal","message":"The stored session is damaged."}');
}
if (array_key_exists('data', $in)) {
    $doc['data'] = $in['data'];
}
if (is_array($in['meta'] ?? null)) {
    $doc['meta'] = array_merge((array)$doc['meta'], $in['meta']);
}
$doc['meta'] = (object)$doc['meta'];
$doc['version']++;
ftruncate($f, 0);
rewind($f);
fwrite($f, json_encode($doc));
fflush($f);
flock($f, LOCK_UN);
fclose($f);
echo json_encode(['key' => $key, 'version' => $doc['version']]);
