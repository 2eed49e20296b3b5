console.log("django");
