using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.Hosting;
using TenantDb.Functions;
using TenantDb.Functions.Api;

var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();
builder.UseMiddleware<ExceptionMiddleware>();
builder.UseMiddleware<ActorMiddleware>();
builder.Services.AddTenantDbServices(builder.Configuration);
builder.Build().Run();
