# install.ps1: the PowerShell twin of an install.sh that reports its steps with install-beacon.
# Users run it as:  irm https://acme.example/install.ps1 | iex
# Replace the acme values; pin the checksum from the release's SHA256SUMS (after checking its signature).
$ErrorActionPreference = 'Stop'

$BeaconVersion = '0.2.0'
$BeaconBase = "https://downloads.acme.example/beacon/$BeaconVersion"
$BeaconAsset = "install-beacon-$BeaconVersion-x86_64-pc-windows-gnu.zip"
$BeaconSha256 = 'PASTE-THE-SHA256-OF-THE-ZIP-FROM-SHA256SUMS'

# Every install-beacon call reads these instead of flags.
$env:INSTALL_BEACON_PRODUCT = 'acme'
$env:INSTALL_BEACON_PRODUCT_VERSION = '1.2.3'
$env:INSTALL_BEACON_PROTOCOL = 'json'
$env:INSTALL_BEACON_ENDPOINT = 'https://collector.acme.example'

# Download and verify the beacon. On any failure $Beacon stays $null and the install goes on.
# The zip is read into memory (at most 16 MiB), its SHA-256 is taken of those bytes and the exe is
# unpacked from the same bytes, so nothing on disk can be swapped between the check and the run. The
# exe goes into a new directory with a random name that only this user may open, held open without
# write or delete sharing while the script runs, and removed at the end.
$Beacon = $null
$BeaconDir = $null
$BeaconLock = $null
try {
    Add-Type -AssemblyName System.Net.Http, System.IO.Compression
    [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
    $client = New-Object System.Net.Http.HttpClient
    $client.Timeout = [TimeSpan]::FromSeconds(10)
    $response = $client.GetAsync("$BeaconBase/$BeaconAsset", [System.Net.Http.HttpCompletionOption]::ResponseHeadersRead).GetAwaiter().GetResult()
    $null = $response.EnsureSuccessStatusCode()
    $download = $response.Content.ReadAsStreamAsync().GetAwaiter().GetResult()
    $zipBytes = New-Object System.IO.MemoryStream
    $buffer = New-Object byte[] 65536
    while (($n = $download.Read($buffer, 0, $buffer.Length)) -gt 0) {
        if ($zipBytes.Length + $n -gt 16MB) { throw "larger than 16 MiB" }
        $zipBytes.Write($buffer, 0, $n)
    }
    $sha = [System.Security.Cryptography.SHA256]::Create()
    $hash = ([System.BitConverter]::ToString($sha.ComputeHash($zipBytes.ToArray()))).Replace('-', '')
    if ($hash -ne $BeaconSha256) { throw "checksum mismatch" }

    $BeaconDir = Join-Path ([System.IO.Path]::GetTempPath()) ("install-beacon-" + [System.Guid]::NewGuid().ToString('N'))
    # CreateDirectory would accept an existing directory: a fresh random name cannot exist yet, and
    # the ACL set before anything is written in it leaves only this user.
    if (Test-Path -LiteralPath $BeaconDir) { throw "$BeaconDir exists" }
    $null = [System.IO.Directory]::CreateDirectory($BeaconDir)
    $acl = New-Object System.Security.AccessControl.DirectorySecurity
    $acl.SetAccessRuleProtection($true, $false)
    $me = [System.Security.Principal.WindowsIdentity]::GetCurrent().User
    $acl.AddAccessRule((New-Object System.Security.AccessControl.FileSystemAccessRule($me, 'FullControl', 'ContainerInherit,ObjectInherit', 'None', 'Allow')))
    Set-Acl -LiteralPath $BeaconDir -AclObject $acl

    $exe = Join-Path $BeaconDir 'install-beacon.exe'
    $zipBytes.Position = 0
    $archive = New-Object System.IO.Compression.ZipArchive($zipBytes, [System.IO.Compression.ZipArchiveMode]::Read)
    $entry = $archive.GetEntry('install-beacon.exe')
    if (-not $entry -or $entry.Length -gt 16MB) { throw "no install-beacon.exe in the archive" }
    $from = $entry.Open()
    $to = [System.IO.File]::Open($exe, [System.IO.FileMode]::CreateNew, [System.IO.FileAccess]::Write, [System.IO.FileShare]::None)
    try { $from.CopyTo($to) } finally { $to.Dispose(); $from.Dispose(); $archive.Dispose() }
    # Read sharing only: the exe runs, nobody can rewrite, rename or delete it while this handle lives.
    $BeaconLock = [System.IO.File]::Open($exe, [System.IO.FileMode]::Open, [System.IO.FileAccess]::Read, [System.IO.FileShare]::Read)
    $Beacon = $exe
} catch {
    $Beacon = $null
}

# Removes the beacon and its directory once the install is over.
function Remove-Beacon {
    if ($BeaconLock) { $BeaconLock.Dispose() }
    if ($BeaconDir) { Remove-Item -LiteralPath $BeaconDir -Recurse -Force -ErrorAction SilentlyContinue }
}

# Telemetry never stops the install: no output, no error, whatever the beacon does.
function Beacon { if ($Beacon) { try { & $Beacon @args | Out-Null } catch {} } }

$Step = 'start'
Beacon started
try {
    $Step = 'download'
    $package = Join-Path $env:TEMP 'acme.zip'
    Invoke-WebRequest -Uri 'https://downloads.acme.example/acme-1.2.3-windows.zip' -OutFile $package -UseBasicParsing

    $Step = 'unpack'
    Expand-Archive -Path $package -DestinationPath "$env:LOCALAPPDATA\Programs\acme" -Force

    $Step = 'configure'
    # External commands can run through the beacon, which reports their exit code if they fail:
    if ($Beacon) { & $Beacon run --step configure -- "$env:LOCALAPPDATA\Programs\acme\acme.exe" init }
    else { & "$env:LOCALAPPDATA\Programs\acme\acme.exe" init }
    if ($LASTEXITCODE -ne 0) { throw "acme init failed" }

    Beacon success
} catch {
    if ($Step -ne 'configure') { Beacon error --step $Step --exit-code 1 }
    # Offers help on the console (CONIN$/CONOUT$); skipped when there is none.
    Beacon support --prompt
    throw
} finally {
    Remove-Beacon
}
