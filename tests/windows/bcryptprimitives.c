/* Test-only stand-in for bcryptprimitives.dll, which Wine 8 lacks: Rust's standard library imports
 * ProcessPrng from it on Windows. tests/windows.rs builds this with mingw next to the exe under
 * test; it is never shipped (Windows itself has the real DLL). */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom, in advapi32 */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
