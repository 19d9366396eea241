<?php
// The PHP system sessiond replaces, as `make bench` runs it for its baseline
// (the seed's design with its short-term fixes): POST a JSON body
// {"data":..., "meta":{...}}; answers 201 {"key","version"}.
// Files live flat in SESSIONS_DIR (set by the PHP-FPM pool), one KEY.json each.
header('Content-Type: application/json');
header('Cache-Control: no-store');
$dir = getenv('SESSIONS_DIR');
$in = json_decode(file_get_contents('php://input') ?: '{}', true);
if (!is_array($in)) {
    http_response_code(400);
    exit('{"error":"bad_request","message":"The body is not a JSON object."}');
}
$alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
for ($try = 0; $try < 10; $try++) {
    $key = '';
    for ($i = 0; $i < 8; $i++) {
        $key .= $alphabet[random_int(0, 35)];
    }
    // 'x' fails when the key is taken, instead of overwriting a session
    $f = @fopen("$dir/$key.json", 'x');
    if ($f) {
        break;
    }
}
if (!$f) {
    http_response_code(503);
    exit('{"error":"busy","message":"No free key found."}');
}
$doc = ['key' => $key, 'version' => 1,
        'meta' => (object)($in['meta'] ?? []), 'data' => $in['data'] ?? new stdClass()];
flock($f, LOCK_EX);
fwrite($f, json_encode($doc));
flock($f, LOCK_UN);
fclose($f);
http_response_code(201);
echo json_encode(['key' => $key, 'version' => 1]);
