using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace SampleApp;

/// <summary>Not a function: a test points a hand-written functions.metadata here to prove start-up refuses it.</summary>
public static class Unservable
{
    public static IActionResult Run(HttpRequest request, Uri notBindable) => new OkObjectResult(notBindable.ToString());
}
